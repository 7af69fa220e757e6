//! Small input rules shared by the use cases.

use crate::{Error, Result};

/// A required, trimmed, single-line text of at most `max` characters.
pub(crate) fn required_text(field: &str, value: Option<&str>, max: usize) -> Result<String> {
    match value.map(str::trim) {
        None | Some("") => Err(Error::bad_request(
            format!("missing_{field}"),
            format!("{field} is required"),
        )),
        Some(v) => text(field, v, max),
    }
}

pub(crate) fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

fn text(field: &str, v: &str, max: usize) -> Result<String> {
    if v.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(v.to_owned())
}

/// A required name (account, legal, representative): a single-line text that reads back as
/// stored, `missing_<field>` when empty, `invalid_<field>` when it holds controls, bidi
/// overrides or isolates, or nothing visible.
pub(crate) fn required_name(field: &str, value: Option<&str>, max: usize) -> Result<String> {
    let v = required_text(field, value, max)?;
    name(field, &v)?;
    Ok(v)
}

/// An optional name (an agent's): absent or empty is `None`; otherwise as [`required_name`].
pub(crate) fn optional_name(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>> {
    let v = optional_text(field, value, max)?;
    if let Some(v) = &v {
        name(field, v)?;
    }
    Ok(v)
}

fn name(field: &str, v: &str) -> Result<()> {
    ami_core::text::check_name(v)
        .map_err(|problem| Error::invalid(field, format!("{field} {problem}")))
}

/// A plausible mailbox: one `@`, a dotted domain, no spaces or controls, RFC length.
pub(crate) fn email(field: &str, v: &str) -> Result<String> {
    let v = v.trim();
    let ok = v.len() <= 254
        && !v.chars().any(|c| c.is_control() || c.is_whitespace())
        && matches!(v.split_once('@'), Some((local, domain))
            if !local.is_empty() && local.len() <= 64 && !domain.contains('@')
               && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Error::invalid(
            field,
            format!("{field} is not an email address"),
        ))
    }
}

/// Free-text reasons (suspension, cancellation): optional, short, single-line.
pub(crate) fn reason(value: Option<&str>, default: &str) -> Result<String> {
    Ok(optional_text("reason", value, 500)?.unwrap_or_else(|| default.to_owned()))
}

/// Path ids: a malformed id is simply not found, exactly like a foreign one.
pub(crate) fn id(prefix: &str, thing: &str, value: &str) -> Result<()> {
    if ami_core::id::is_well_formed(prefix, value) {
        Ok(())
    } else {
        Err(Error::not_found(thing))
    }
}
