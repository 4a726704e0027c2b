//! `policy explain`: the effective policy, every default filled in, as TOML
//! (what the appliance will actually run) or JSON.

use crate::model::Policy;

/// The effective policy as TOML. The admin token, if any, is redacted.
pub fn explain_toml(policy: &Policy) -> String {
    match toml::to_string_pretty(policy) {
        Ok(s) => s,
        // The model only holds strings, numbers, booleans, arrays and tables,
        // all of which TOML can express; keep a readable fallback regardless.
        Err(e) => format!("# cannot render the policy as TOML: {e}\n{policy:#?}\n"),
    }
}

/// The effective policy as JSON.
pub fn explain_json(policy: &Policy) -> String {
    serde_json::to_string_pretty(policy).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
