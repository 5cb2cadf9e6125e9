//! Writing to stdout without panicking when the reader goes away (`dj … | head`).

use std::io::Write;

use serde_json::Value;

/// Prints `text` and a newline; a closed pipe is not an error worth a panic.
pub fn line(text: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", text.as_ref());
}

/// Pretty JSON.
pub fn json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => line(text),
        Err(e) => eprintln!("error: could not print JSON: {e}"),
    }
}
