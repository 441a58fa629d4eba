//! `file:line:col: message` errors, and turning toml's byte spans into them.

use std::fmt;
use std::ops::Range;

/// One problem in a routing file, located at the value that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file name as given to [`crate::parse`] or [`crate::load`].
    pub file: String,
    /// 1-based line; 0 when the error has no position (e.g. the file is unreadable).
    pub line: usize,
    /// 1-based column, counted in characters; 0 when `line` is 0.
    pub col: usize,
    /// What is wrong, on one line.
    pub message: String,
}

/// Every problem found in one routing file, in file order. Never empty when
/// returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// The text being parsed and the name it is reported under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

// === impl ConfigError ===

impl ConfigError {
    /// An error without a position, printed as `file: message`.
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            col: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

// === impl ConfigErrors ===

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

// === impl Source ===

impl<'a> Source<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Self { file, text }
    }

    /// An error located at byte `offset` of the text.
    pub(crate) fn error_at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, offset);
        ConfigError {
            file: self.file.to_owned(),
            line,
            col,
            message: message.into(),
        }
    }

    /// An error located at the start of `span`.
    pub(crate) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        self.error_at(span.start, message)
    }

    /// Translates a toml deserialization error, keeping only its one-line
    /// message: toml's own `Display` is a multi-line excerpt, which would
    /// break the one-error-per-line contract of `serin check` and reload logs.
    pub(crate) fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let message = error.message().trim().replace('\n', "; ");
        match error.span() {
            Some(span) => self.error(span, message),
            None => ConfigError::whole_file(self.file, message),
        }
    }
}

/// 1-based line and character column of byte `offset` in `text`. An offset
/// past the end, or inside a multi-byte character, is clamped to the nearest
/// character boundary before it.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // `=` after a two-byte `é`: byte 10, character column 4.
        assert_eq!(line_col(text, 10), (2, 4));
        assert_eq!(line_col(text, 9), (2, 3));
        assert_eq!(line_col(text, 1000), (3, 1));
    }

    #[test]
    fn errors_are_std_errors() {
        fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
        is_error::<ConfigError>();
        is_error::<ConfigErrors>();
    }

    #[test]
    fn display_with_and_without_position() {
        let src = Source::new("serin.toml", "x\ny = 2");
        assert_eq!(src.error_at(4, "bad").to_string(), "serin.toml:2:3: bad");
        let whole = ConfigError::whole_file("serin.toml", "No such file");
        assert_eq!(whole.to_string(), "serin.toml: No such file");
        let all = ConfigErrors(vec![src.error_at(0, "one"), whole]);
        assert_eq!(
            all.to_string(),
            "serin.toml:1:1: one\nserin.toml: No such file"
        );
    }
}
