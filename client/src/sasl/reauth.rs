//! Authentication at connect time and re-authentication before the session the
//! broker granted runs out (KIP-368).
//!
//! Re-authentication sends SaslHandshake and SaslAuthenticate through the
//! connection's one request queue while holding its gate: requests queued before go
//! out (and are answered) first, requests made meanwhile wait and follow the
//! exchange, so nothing is lost or reordered and the broker sees nothing else
//! between the handshake and the last token (Kafka closes a connection that sends
//! other requests then). A failed re-authentication closes the connection for new
//! requests (the cluster opens a fresh one, which authenticates from scratch).

use std::sync::Arc;
use std::time::Duration;

use super::{authenticate, SaslConfig};
use crate::conn::{Connection, WeakConnection};
use crate::error::Result;

/// Authenticates `conn` and, when the broker limits the session, keeps it
/// authenticated in the background for as long as any handle keeps it open.
pub(crate) async fn authenticate_and_keep(conn: &Connection, sasl: Arc<SaslConfig>) -> Result<()> {
    if let Some(lifetime) = authenticate(conn, &sasl).await? {
        tokio::spawn(keep(conn.downgrade(), conn.addr().to_owned(), sasl, lifetime));
    }
    Ok(())
}

/// When to re-authenticate: 85–95% into the session (Java's window), at least 1 s
/// before it ends when that leaves anything.
pub(crate) fn reauth_delay(lifetime: Duration, jitter: f64) -> Duration {
    let at = lifetime.mul_f64(0.85 + 0.10 * jitter.clamp(0.0, 1.0));
    at.min(lifetime.saturating_sub(Duration::from_secs(1)).max(lifetime / 2))
}

async fn keep(weak: WeakConnection, addr: String, sasl: Arc<SaslConfig>, mut lifetime: Duration) {
    loop {
        tokio::time::sleep(reauth_delay(lifetime, fastrand::f64())).await;
        let Some(conn) = weak.upgrade() else { return };
        if conn.is_closed() {
            return;
        }
        // Nothing else may go out between the handshake and the last token: other
        // requests wait at the gate, in order, and follow the exchange.
        let outcome = {
            let _only_us = conn.exclusive().await;
            authenticate(&conn, &sasl).await
        };
        match outcome {
            Ok(Some(next)) => {
                tracing::debug!(broker = %addr, lifetime_ms = next.as_millis() as u64, "re-authenticated");
                lifetime = next;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(broker = %addr, error = %e, "re-authentication failed; closing the connection");
                conn.close();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reauth_delay;
    use std::time::Duration;

    #[test]
    fn reauthenticates_inside_the_session() {
        let s = Duration::from_secs;
        assert_eq!(reauth_delay(s(100), 0.0), s(85));
        assert_eq!(reauth_delay(s(100), 1.0), s(95));
        assert!(reauth_delay(s(3), 1.0) <= s(2));
        assert!(reauth_delay(Duration::from_millis(500), 1.0) >= Duration::from_millis(250));
    }
}
