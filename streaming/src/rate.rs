//! Rate limiting and backpressure (being written).
