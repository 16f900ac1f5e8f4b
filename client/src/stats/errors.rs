//! Error codes brokers answered, counted by API and code.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::ErrorStatistics;
use crate::codes::{Api, ErrorCode};

/// The bucket of codes this client has no name for: a broker sending every possible
/// code grows the table by one entry per API, not by 65,536.
const UNKNOWN: i16 = i16::MIN;

/// One (API, code) pair's count and facade counter.
type Count = (Api, u64, metrics::Counter);

/// Counts per (API, code), with a facade counter made at a pair's first answer.
/// Errors are rare, so a mutex is cheap here; the table holds at most one entry per
/// API and known code.
#[derive(Debug, Default)]
pub(crate) struct ErrorCounts {
    /// The broker's address, the facade's `broker` label.
    broker: String,
    by: Mutex<BTreeMap<(i16, i16), Count>>,
}

impl ErrorCounts {
    /// The counts of the broker at `broker`.
    pub(crate) fn of(broker: &str) -> ErrorCounts {
        ErrorCounts { broker: broker.to_owned(), by: Mutex::default() }
    }

    /// One answer to `api` with `code` (0, no error, is not counted).
    pub(crate) fn note(&self, api: Api, code: i16) {
        if code == 0 {
            return;
        }
        let code = if ErrorCode::from(code).name() == "UNKNOWN" { UNKNOWN } else { code };
        let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        let entry = by.entry((api.key(), code)).or_insert_with(|| {
            let name = ErrorCode::from(code).name();
            let labels = [("broker", self.broker.clone()), ("api", api.to_string()), ("code", name.to_owned())];
            (api, 0, metrics::counter!("ferrokafka_errors_total", &labels))
        });
        entry.1 += 1;
        entry.2.increment(1);
    }

    /// Adds these counts to `sum` (a client's errors over its brokers).
    pub(crate) fn add_to(&self, sum: &mut BTreeMap<(i16, i16), ErrorStatistics>) {
        for e in self.snapshot() {
            let key = (e.api.key(), e.code.code());
            sum.entry(key).and_modify(|s| s.count += e.count).or_insert(e);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<ErrorStatistics> {
        let by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        by.iter()
            .map(|(&(_, code), (api, count, _))| ErrorStatistics { api: *api, code: code.into(), count: *count })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_api_and_code_and_bounds_unknown_codes() {
        let e = ErrorCounts::default();
        e.note(Api::FETCH, 6);
        e.note(Api::FETCH, 6);
        e.note(Api::FETCH, 0);
        e.note(Api::PRODUCE, 6);
        for code in 20_000..21_000 {
            e.note(Api::FETCH, code);
        }
        let s = e.snapshot();
        let find = |api: Api, code: i16| s.iter().find(|x| x.api == api && x.code.code() == code).map(|x| x.count);
        assert_eq!(find(Api::FETCH, 6), Some(2));
        assert_eq!(find(Api::PRODUCE, 6), Some(1));
        assert_eq!(find(Api::FETCH, UNKNOWN), Some(1000));
        assert_eq!(s.len(), 3, "{s:?}");
    }
}
