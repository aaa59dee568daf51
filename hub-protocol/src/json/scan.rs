//! A quick reader for JSON hub messages in the shape clients write them.
//!
//! Clients send the same few shapes all the time: `{"type":1,"invocationId":"7","target":"Echo",
//! "arguments":["hi"]}`, pings, completions. Going through serde's derived visitor for the
//! message's eleven optional fields cost more than the rest of the parse (half a microsecond
//! per invocation, the biggest share of the server's own work per echo). This reader walks
//! such messages directly and fills the same `WireMessage` the serde path fills, so both
//! share one set of checks (`WireMessage::into_message`).
//!
//! It gives up (returns `None`) on anything out of the ordinary: an escape in a key or a
//! string field, an unknown or repeated key, `null` where a string is expected, headers, a
//! number that is not a plain non-negative integer, malformed JSON. The serde path then
//! reads the record from the start, so every error and every edge case is decided there,
//! once. Argument, item and result values are read by serde_json itself (a borrowed
//! `RawValue`), which validates them exactly as the serde path does.

use serde::Deserialize;
use serde_json::value::RawValue as JsonRaw;

use super::read::{Arguments, WireMessage};
use crate::raw::{JsonText, SharedText};
use crate::RawValue;

/// Reads `record` (one message without its separator) when it has a common shape; its values
/// are slices of `shared` when `record` lies inside it.
pub(super) fn wire_message(record: &[u8], shared: SharedText<'_>) -> Option<WireMessage> {
    // Checked once (as part of the shared text, or here); the reader then cuts the text only
    // next to ASCII quotes and punctuation, and serde_json reads values from the checked text.
    let text = match shared.text_of(record) {
        Some(text) => text,
        None => std::str::from_utf8(record).ok()?,
    };
    let mut s = Scanner {
        text,
        input: record,
        shared,
        pos: 0,
    };
    let mut wire = WireMessage::default();
    // One bit per field: a repeated key is left to serde (which rejects it).
    let mut seen = 0u16;
    s.skip_ws();
    s.expect(b'{')?;
    s.skip_ws();
    if s.peek()? == b'}' {
        s.pos += 1;
    } else {
        loop {
            let key = s.plain_string()?.as_bytes();
            s.skip_ws();
            s.expect(b':')?;
            s.skip_ws();
            let bit = match key {
                b"type" => {
                    wire.kind = Some(i64::try_from(s.integer()?).ok()?);
                    0
                }
                b"invocationId" => {
                    wire.invocation_id = Some(s.plain_string()?.to_owned());
                    1
                }
                b"target" => {
                    wire.target = Some(s.plain_string()?.to_owned());
                    2
                }
                b"arguments" => {
                    wire.arguments = Some(Arguments(s.raw_list()?));
                    3
                }
                b"streamIds" => {
                    wire.stream_ids = Some(s.string_list()?);
                    4
                }
                b"item" => {
                    wire.item = Some(s.raw()?);
                    5
                }
                b"result" => {
                    wire.result = Some(s.raw()?);
                    6
                }
                b"error" => {
                    wire.error = Some(s.plain_string()?.to_owned());
                    7
                }
                b"allowReconnect" => {
                    wire.allow_reconnect = Some(s.boolean()?);
                    8
                }
                b"sequenceId" => {
                    wire.sequence_id = Some(s.integer()?);
                    9
                }
                // Headers, unknown keys: serde's business.
                _ => return None,
            };
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            s.skip_ws();
            match s.next()? {
                b',' => s.skip_ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.skip_ws();
    (s.pos == s.input.len()).then_some(wire)
}

struct Scanner<'a> {
    text: &'a str,
    /// `text` as bytes.
    input: &'a [u8],
    /// What values are kept from.
    shared: SharedText<'a>,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string without escapes or control characters.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let len = self.input[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.input[start + len] != b'"' {
            return None;
        }
        self.pos += len + 1;
        // Both ends are next to an ASCII quote: character boundaries.
        self.text.get(start..start + len)
    }

    /// A non-negative integer without sign, fraction or exponent (at most 18 digits, so it
    /// cannot overflow); leading zeros are not JSON.
    fn integer(&mut self) -> Option<u64> {
        let rest = &self.input[self.pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 18 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = rest.get(digits) {
            return None;
        }
        self.pos += digits;
        Some(rest[..digits].iter().fold(0, |n, &b| n * 10 + u64::from(b - b'0')))
    }

    fn boolean(&mut self) -> Option<bool> {
        let rest = &self.input[self.pos..];
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.pos += len;
        Some(value)
    }

    /// Any JSON value, read and validated by serde_json.
    fn raw(&mut self) -> Option<RawValue> {
        let rest = self.text.get(self.pos..)?;
        let mut de = serde_json::Deserializer::from_str(rest);
        let raw = <&JsonRaw>::deserialize(&mut de).ok()?;
        // The borrowed value lies inside `rest`: it ends where reading goes on.
        let end = raw.get().as_ptr() as usize - rest.as_ptr() as usize + raw.get().len();
        self.pos += end;
        Some(RawValue::Json(JsonText::read(raw, self.shared)))
    }

    fn raw_list(&mut self) -> Option<Vec<RawValue>> {
        let mut values = Vec::new();
        self.list(|s| {
            values.push(s.raw()?);
            Some(())
        })?;
        Some(values)
    }

    fn string_list(&mut self) -> Option<Vec<String>> {
        let mut values = Vec::new();
        self.list(|s| {
            values.push(s.plain_string()?.to_owned());
            Some(())
        })?;
        Some(values)
    }

    /// `[` items separated by commas `]`, each read by `item`.
    fn list(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.skip_ws();
            match self.next()? {
                b',' => self.skip_ws(),
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HubMessage;
    use proptest::prelude::*;

    /// What the serde path makes of `record`.
    fn by_serde(record: &[u8]) -> Result<Option<HubMessage>, String> {
        super::super::read::parse_with_serde(record).map_err(|e| e.to_string())
    }

    /// What the quick reader makes of `record`, if it reads it at all.
    fn by_scan(record: &[u8]) -> Option<Result<Option<HubMessage>, String>> {
        // From shared bytes, as a connection reads: the values are slices of them.
        let shared = bytestring::ByteString::try_from(record).ok()?;
        wire_message(shared.as_bytes(), SharedText(Some(&shared)))
            .map(|wire| wire.into_message().map_err(|e| e.to_string()))
    }

    #[test]
    fn reads_the_common_shapes() {
        for text in [
            r#"{"type":1,"invocationId":"7","target":"Echo","arguments":["hi"]}"#,
            r#"{"type":1,"target":"Send","arguments":["a",{"x":[1,2.5e3,null,true]},-3]}"#,
            r#" { "type" : 4 , "invocationId":"1", "target":"Counter","arguments":[10, 100],"streamIds":[] } "#,
            r#"{"type":1,"invocationId":"2","target":"Up","arguments":[],"streamIds":["0","1"]}"#,
            r#"{"type":2,"invocationId":"0","item":null}"#,
            r#"{"type":3,"invocationId":"5","result":{"a":"b"}}"#,
            r#"{"type":3,"invocationId":"5","error":"boom"}"#,
            r#"{"type":3,"invocationId":"5"}"#,
            r#"{"type":5,"invocationId":"5"}"#,
            r#"{"type":6}"#,
            r#"{"type":7,"error":"bye","allowReconnect":false}"#,
            r#"{"type":8,"sequenceId":12}"#,
            r#"{"type":9,"sequenceId":0}"#,
            r#"{"type":99}"#,
            r#"{"type":1,"arguments":[]}"#,
        ] {
            let scanned = by_scan(text.as_bytes()).unwrap_or_else(|| panic!("not read quickly: {text}"));
            assert_eq!(scanned, by_serde(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn leaves_the_unusual_to_serde() {
        for text in [
            r#"{"type":1,"target":"E\u0063ho","arguments":[]}"#,
            r#"{"type":1,"target":"Echo","arguments":[],"headers":{"a":"b"}}"#,
            r#"{"type":1,"target":"Echo","arguments":[],"extra":1}"#,
            r#"{"type":6,"type":6}"#,
            r#"{"type":1.0}"#,
            r#"{"type":-1}"#,
            r#"{"type":01}"#,
            r#"{"type":"1"}"#,
            r#"{"type":1,"invocationId":null,"target":"E","arguments":[]}"#,
            r#"{"type":6}x"#,
            r#"{"type":6,}"#,
            r#"{"type":1,"target":"E","arguments":[1,]}"#,
            r#"{"type":1,"target":"E","arguments":[01]}"#,
            r#"{"type":7,"allowReconnect":tru}"#,
            r#"[1]"#,
            "",
            r#"{"type":99999999999999999999}"#,
        ] {
            assert!(by_scan(text.as_bytes()).is_none(), "read quickly: {text}");
        }
    }

    /// JSON text for one hub message field value, sometimes odd.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "[ -~]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            "\\PC{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"\\ud800\"".to_string()),
            Just("01".to_string()),
            Just("[1,]".to_string()),
            Just("{\"a\" 1}".to_string()),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{1,3}", inner), 0..3).prop_map(|v| {
                    let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    /// A message: known and unknown keys, in any order, with values of any shape.
    fn message() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("type"),
            Just("invocationId"),
            Just("target"),
            Just("arguments"),
            Just("streamIds"),
            Just("item"),
            Just("result"),
            Just("error"),
            Just("allowReconnect"),
            Just("sequenceId"),
            Just("headers"),
            Just("other"),
        ];
        let field_value = prop_oneof![
            3 => value(),
            2 => (0u8..12).prop_map(|n| n.to_string()),
            2 => "[a-zA-Z0-9]{0,6}".prop_map(|s| format!("\"{s}\"")),
            1 => prop::collection::vec(value(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
        ];
        let ws = prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t")];
        // Mostly with a valid type first, so that many messages get past the type check.
        let kind = prop_oneof![4 => (1u8..10).prop_map(Some), 1 => Just(None)];
        (kind, prop::collection::vec((key, field_value, ws), 0..6)).prop_map(|(kind, fields)| {
            let mut body: Vec<String> = kind.map(|n| format!("\"type\":{n}")).into_iter().collect();
            body.extend(
                fields
                    .into_iter()
                    .map(|(k, v, ws)| format!("{ws}\"{k}\"{ws}:{ws}{v}{ws}")),
            );
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever the quick reader reads, it reads exactly as serde does.
        #[test]
        fn agrees_with_serde(text in message()) {
            if let Some(scanned) = by_scan(text.as_bytes()) {
                prop_assert_eq!(scanned, by_serde(text.as_bytes()), "{}", text);
            }
        }

        /// Typical messages are read quickly, not left to serde.
        #[test]
        fn reads_invocations_quickly(id in "[0-9]{1,4}", target in "[A-Za-z]{1,12}", args in prop::collection::vec(value(), 0..4)) {
            let text = format!(r#"{{"type":1,"invocationId":"{id}","target":"{target}","arguments":[{}]}}"#, args.join(","));
            let serde = by_serde(text.as_bytes());
            match by_scan(text.as_bytes()) {
                Some(scanned) => prop_assert_eq!(scanned, serde, "{}", text),
                // Only a malformed argument sends it to serde, which then refuses it.
                None => prop_assert!(serde.is_err(), "{}", text),
            }
        }
    }
}
