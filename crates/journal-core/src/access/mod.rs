//! Who may read what: roles by IAM principal, and masking of records for operators.
//!
//! One [`AccessPolicy`] document (JSON, versioned) says which IAM principals are auditors and
//! which are operators ([`roles`]), and which record fields each tenant declares as personal data
//! ([`pii`]). Replay resolves the caller's role with [`AccessPolicy::role_of`] and hands every
//! record it returns through [`mask_record`]: auditors see records whole, operators see them with
//! the subject, raw features, declared PII and personal data in free text ([`scrub`]) replaced by
//! markers, and a list of every path that was redacted and why. The format and the rules are
//! documented for people in `docs/access.md`.

pub mod event;
pub mod mask;
pub mod pii;
pub mod roles;
pub mod scrub;

#[cfg(test)]
mod tests;

pub use event::{AccessEvent, MAX_LISTED_READS};
pub use mask::{mask_record, Masked, Reason, Redaction, REDACTED};
pub use pii::{PiiFields, PiiPath};
pub use roles::{AccessPolicy, PolicyError, PolicyProblem, Role, RoleGrant, POLICY_VERSION};
pub use scrub::{scrub_text, TextKind};

/// Appends an object key to a JSON path in the notation rejections use elsewhere
/// (`context.email`, `steps[0].output`); a key that is not a plain name is quoted
/// (`context["e-mail address"]`) so that every path reads back unambiguously.
pub(crate) fn push_key(path: &mut String, key: &str) {
    let plain = key == "*"
        || (!key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::Value::from(key).to_string());
        path.push(']');
    }
}

/// Appends an array index to a JSON path: `steps` → `steps[2]`.
pub(crate) fn push_index(path: &mut String, index: usize) {
    path.push('[');
    path.push_str(&index.to_string());
    path.push(']');
}

/// True when `path` is `ancestor` itself or lies inside it (`context` covers `context.email`
/// and `context["a b"]`, not `contexts`).
pub(crate) fn covers(ancestor: &str, path: &str) -> bool {
    match path.strip_prefix(ancestor) {
        Some("") => true,
        Some(rest) => rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}
