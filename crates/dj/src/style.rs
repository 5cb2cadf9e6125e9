//! Colour on a terminal, plain text everywhere else.

use std::io::IsTerminal;

/// Whether output is for a person at a terminal, and whether to colour it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours (stdout is a terminal, NO_COLOR unset, no --no-color).
    pub color: bool,
    /// stdout is a terminal (long lists are shortened).
    pub terminal: bool,
}

const RESET: &str = "\x1b[0m";

impl Style {
    pub fn detect(no_color_flag: bool) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: terminal && !no_color_env && !no_color_flag,
            terminal,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_unless_colour_is_on() {
        let plain = Style::default();
        assert_eq!(plain.bad("x"), "x");
        let color = Style {
            color: true,
            terminal: true,
        };
        assert_eq!(color.good("ok"), "\x1b[32mok\x1b[0m");
    }
}
