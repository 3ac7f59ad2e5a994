//! Tessera's domain core: Segment messages and their validation, timestamps, identity
//! resolution and profiles, and the audience and computed-trait language. It does no I/O and
//! reads no clock: the caller passes in the time and any generated ids, so every rule here is
//! a plain, replayable function.

pub mod activation;
pub mod audience;
pub mod error;
pub mod identity;
pub mod message;
pub mod privacy;
pub mod segment;
pub mod time;

pub use error::MessageError;
pub use message::{
    normalize, normalize_value, IngestContext, MessageType, NormalizedEvent, MAX_EVENT_BYTES,
};
pub use time::Millis;
