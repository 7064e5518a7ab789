//! Tools the sub-protocols share and none of them owns: per-origin rate limiting (broadcast,
//! records and direct delivery each keep their own buckets of [`rate::RateLimiter`]).

pub mod rate;
