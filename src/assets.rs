//! Files compiled into the binary: the web console, the API reference, and
//! the Prometheus and Grafana files a lab needs (so an air-gapped lab can
//! fetch them from the appliance itself).

/// (path under /assets or a page name, content type, bytes)
const FILES: &[(&str, &str, &str)] = &[
    (
        "console/index.html",
        "text/html; charset=utf-8",
        include_str!("../assets/console/index.html"),
    ),
    (
        "docs.html",
        "text/html; charset=utf-8",
        include_str!("../assets/docs.html"),
    ),
    (
        "openapi.json",
        "application/json",
        include_str!("../assets/openapi.json"),
    ),
    (
        "grafana/synqc-dashboard.json",
        "application/json",
        include_str!("../assets/grafana/synqc-dashboard.json"),
    ),
    (
        "grafana/README.md",
        "text/markdown; charset=utf-8",
        include_str!("../assets/grafana/README.md"),
    ),
    (
        "grafana/provisioning/datasources/synqc.yml",
        "application/yaml",
        include_str!("../assets/grafana/provisioning/datasources/synqc.yml"),
    ),
    (
        "grafana/provisioning/dashboards/synqc.yml",
        "application/yaml",
        include_str!("../assets/grafana/provisioning/dashboards/synqc.yml"),
    ),
    (
        "prometheus/prometheus.yml",
        "application/yaml",
        include_str!("../assets/prometheus/prometheus.yml"),
    ),
    (
        "prometheus/synqc-alerts.yml",
        "application/yaml",
        include_str!("../assets/prometheus/synqc-alerts.yml"),
    ),
    (
        "prometheus/synqc-alerts.test.yml",
        "application/yaml",
        include_str!("../assets/prometheus/synqc-alerts.test.yml"),
    ),
];

/// The embedded file at `path`, or None.
pub fn get(path: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, body)| (*ct, *body))
}

/// Every embedded path (for the index at /assets/).
pub fn paths() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(p, _, _)| *p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_embedded_json_asset_parses() {
        for path in super::paths().filter(|p| p.ends_with(".json")) {
            let (_, body) = super::get(path).unwrap();
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_ok(),
                "{path} is not JSON"
            );
        }
    }
}
