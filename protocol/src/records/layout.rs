//! The v2 record batch layout (header size, where the CRC starts, attribute bits) and
//! the transaction markers of control batches: a leaf shared by the decoder and the
//! encoder.

/// Size of the v2 batch header, up to and including the record count.
pub(crate) const V2_HEADER_LEN: usize = 61;
/// Where the CRC-covered part of a v2 batch starts (the attributes).
pub(crate) const V2_CRC_START: usize = 21;

pub(crate) const ATTR_CODEC_MASK: i16 = 0x07;
pub(crate) const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub(crate) const ATTR_TRANSACTIONAL: i16 = 0x10;
pub(crate) const ATTR_CONTROL: i16 = 0x20;

/// A transaction marker carried by a control batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlMarker {
    /// The producer's transaction was aborted.
    Abort,
    /// The producer's transaction was committed.
    Commit,
    /// A control type this crate does not know.
    Other(i16),
}

impl ControlMarker {
    pub(crate) fn from_type(ty: i16) -> Self {
        match ty {
            0 => ControlMarker::Abort,
            1 => ControlMarker::Commit,
            t => ControlMarker::Other(t),
        }
    }

    pub(crate) fn type_id(self) -> i16 {
        match self {
            ControlMarker::Abort => 0,
            ControlMarker::Commit => 1,
            ControlMarker::Other(t) => t,
        }
    }
}
