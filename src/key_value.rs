//! The `key=value` arguments the shim passes its own other modes (the sibling's init, the
//! waiting mode): one way to write them and one to read them back.

use std::fmt::Display;

/// One argument, `key=value`.
pub(crate) fn arg(key: &str, value: impl Display) -> String {
    format!("{key}={value}")
}

/// One argument split at its first `=`; `None`: it has none.
pub(crate) fn split(arg: &str) -> Option<(&str, &str)> {
    arg.split_once('=')
}

/// The value of the first argument named `key`; the error says which is missing.
pub(crate) fn value<'a>(args: &'a [String], key: &str) -> Result<&'a str, String> {
    args.iter()
        .filter_map(|a| split(a))
        .find_map(|(k, v)| (k == key).then_some(v))
        .ok_or_else(|| format!("no {key}="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_back_as_written_even_with_an_equals_sign_in_it() {
        let args = vec![arg("a", "x=y"), arg("ab", 2), "loose".to_string()];
        assert_eq!(value(&args, "a"), Ok("x=y"));
        assert_eq!(value(&args, "ab"), Ok("2"));
        assert_eq!(value(&args, "b"), Err("no b=".to_string()));
        assert_eq!(split("loose"), None);
    }
}
