//! JSON reading with file-naming errors, and writing in Python `json.dump` format.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Reads a whole JSON document from `path`.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_reader(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
        if source.is_io() {
            Error::io(path, io::Error::other(source))
        } else {
            Error::Json {
                path: path.into(),
                line: Some(source.line() as u64),
                source,
            }
        }
    })
}

/// Writes `value` to `path` exactly as Python's `json.dump(value, f)` would: separators `", "` and
/// `": "`, non-ASCII (and DEL) escaped as `\uXXXX` (`ensure_ascii=True`), no trailing newline.
pub(crate) fn write_json_py<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut ser = serde_json::Serializer::with_formatter(&mut writer, PyFormatter);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::io(path, io::Error::other(e)))?;
    writer.flush().map_err(|e| Error::io(path, e))
}

/// `serde_json` formatter reproducing Python's default `json.dumps` output.
pub(crate) struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            w.write_all(&s.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&s.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(value: &serde_json::Value) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
        value.serialize(&mut ser).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_python_json_dumps() {
        // Expected strings are what CPython 3 prints for json.dumps(...) of the same values.
        let v = serde_json::json!({"a": [1, 2], "b": {"t": "caf\u{e9} \u{1f600}\"\\\n\u{7f}"}, "c": []});
        assert_eq!(
            py(&v),
            r#"{"a": [1, 2], "b": {"t": "caf\u00e9 \ud83d\ude00\"\\\n\u007f"}, "c": []}"#
        );
    }
}
