//! Location strategies (being written).
