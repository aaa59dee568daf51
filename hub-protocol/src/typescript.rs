//! `ts_rs::TS` for the wire value types (feature `ts-rs`): the TypeScript types the official
//! JavaScript client accepts and produces for them. Both render inline (no declaration of their
//! own), so a payload's field reads `ByteArray: string | Uint8Array`.
//!
//! ```
//! use hub_protocol::types::{Binary, DateTime};
//! use ts_rs::{Config, TS};
//!
//! let cfg = Config::new();
//! assert_eq!(Binary::name(&cfg), "string | Uint8Array");
//! assert_eq!(<Option<DateTime>>::name(&cfg), "string | Date | null");
//! ```

use ts_rs::{Config, TS};

use crate::types::{Binary, DateTime};

/// Binary data: a base64 string in JSON, a `Uint8Array` in MessagePack.
impl TS for Binary {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &Config) -> String {
        "string | Uint8Array".to_owned()
    }

    fn inline(cfg: &Config) -> String {
        Self::name(cfg)
    }
}

/// A date-time: an ISO 8601 string in JSON, a `Date` in MessagePack.
impl TS for DateTime {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &Config) -> String {
        "string | Date".to_owned()
    }

    fn inline(cfg: &Config) -> String {
        Self::name(cfg)
    }
}
