//! What a validator reports: one invalid request field. It sits at the
//! bottom of the crate so that anything that checks input (a control
//! profile, a run submission) can say what is wrong without knowing about
//! the HTTP error envelope that lists it (`error_detail.fields`).

use serde::Serialize;

/// One invalid request field, as listed in `error_detail.fields`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub loc: String,
    pub msg: String,
}

impl FieldError {
    pub fn new(loc: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            loc: loc.into(),
            msg: msg.into(),
        }
    }
}
