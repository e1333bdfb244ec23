//! The daemon's listeners: a unix socket whose permissions decide who may
//! trace (root and one group), and TCP, inside mutual TLS unless the
//! operator said `--insecure`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

use super::Context;
use super::conn;

/// A gid from a group name or number.
pub fn resolve_group(group: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let found = nix::unistd::Group::from_name(group).with_context(|| format!("looking up group {group}"))?;
    Ok(found.with_context(|| format!("no group named {group}"))?.gid.as_raw())
}

/// Binds `path` as root:gid 0660 inside a root:gid 0710 directory: members
/// of the group can reach and connect to it, nobody else can.
pub fn bind_unix(path: &Path, gid: u32) -> anyhow::Result<UnixListener> {
    let dir = path.parent().context("the socket path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let own = |p: &Path, mode: u32| -> anyhow::Result<()> {
        std::os::unix::fs::chown(p, Some(0), Some(gid)).with_context(|| format!("chown {}", p.display()))?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", p.display()))
    };
    own(dir, 0o710)?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing a stale {}", path.display())),
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    own(path, 0o660)?;
    Ok(listener)
}

pub async fn accept_unix(listener: UnixListener, ctx: Arc<Context>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let peer = match stream.peer_cred() {
                    Ok(c) => format!("uid={} gid={} pid={}", c.uid(), c.gid(), c.pid().unwrap_or(0)),
                    Err(_) => "unknown".into(),
                };
                tokio::spawn(conn::handle(stream, ctx.clone(), peer));
            }
            Err(e) => {
                tracing::warn!("accepting a unix client: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn accept_tcp(listener: TcpListener, tls: Option<TlsAcceptor>, ctx: Arc<Context>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accepting a TCP client: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => conn::handle(stream, ctx, format!("tcp {addr} (insecure)")).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(conn::REQUEST_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls_stream)) => conn::handle(tls_stream, ctx, format!("tls {addr}")).await,
                        Ok(Err(e)) => tracing::warn!(peer = %addr, "TLS client refused: {e}"),
                        Err(_) => tracing::warn!(peer = %addr, "TLS client refused: no handshake in time"),
                    }
                }
            }
        });
    }
}
