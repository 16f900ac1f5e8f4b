//! Opening the TCP socket of a connection.

use tokio::net::{TcpSocket, TcpStream};

use super::ConnectionOptions;

/// Resolves `addr` and connects to the first address that answers, with the socket
/// buffers sized as configured (before the connect, so the TCP window scale fits them).
pub(super) async fn open_socket(addr: &str, opts: &ConnectionOptions) -> std::io::Result<TcpStream> {
    let mut last = None;
    for ip in tokio::net::lookup_host(addr).await? {
        let socket = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(n) = opts.receive_buffer {
            socket.set_recv_buffer_size(u32::try_from(n).unwrap_or(u32::MAX))?;
        }
        if let Some(n) = opts.send_buffer {
            socket.set_send_buffer_size(u32::try_from(n).unwrap_or(u32::MAX))?;
        }
        match socket.connect(ip).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} resolves to no address"))))
}

/// The host part of `host:port` or `[v6]:port`, for SNI and the certificate check.
pub(super) fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, _)) => host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host),
        None => addr,
    }
}
