//! Did-you-mean: the known name a misspelt one most likely meant.

/// Edit distance over characters: insertions, deletions, substitutions
/// and swaps of neighbours (optimal string alignment), each one edit.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d: Vec<usize> = (0..(a.len() + 1) * width).collect();
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The candidate `given` most likely meant: a difference in case, dashes
/// for underscores, or a typo or two (at most a third of the name, so a
/// short unrelated word suggests nothing).
pub(super) fn closest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Longer than any name synqc knows: not a typo of one.
    if given.chars().count() > 64 {
        return None;
    }
    let normal = given.to_lowercase().replace('-', "_");
    let len = normal.chars().count();
    candidates
        .iter()
        .map(|c| (edit_distance(&normal, c), *c))
        .filter(|&(d, _)| d <= 2 && d * 3 <= len)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
