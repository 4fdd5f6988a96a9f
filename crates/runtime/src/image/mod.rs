//! Images: the content-addressed store, safe layer unpacking, registry pulls, image config →
//! process.

pub mod config;
pub mod pull;
mod staging;
pub mod store;
pub mod unpack;

pub use store::{ImageConfig, ImageError, ImageRecord, ImageStore, LoadReport};
