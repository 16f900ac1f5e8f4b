//! Transactional offset stores (being written).
