//! One client connection: read and check its request, run the command on a
//! thread of its own with its output going into pipes, and stream the
//! pipes back as frames. The client closing the connection (or sending
//! anything after its request) stops the command; the command's end closes
//! the pipes, and an Exit frame ends the stream.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use shared::daemonproto::{self as proto, Action, Exit, Kind, MAX_REQUEST, ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::instances;
use super::{Context, RemoteCli};
use crate::io::RunIo;

/// How long a client has to send its request (and, on TCP, to finish the
/// TLS handshake).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle<S: AsyncRead + AsyncWrite + Unpin + Send>(stream: S, ctx: Arc<Context>, peer: String) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut rd)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(peer, "refused a request: {e}");
            let _ = send_exit(&mut wr, 2, Some(format!("bad request: {e}"))).await;
            return;
        }
        Err(_) => {
            tracing::warn!(peer, "no request within {REQUEST_TIMEOUT:?}");
            let _ = send_exit(&mut wr, 2, Some("no request in time".into())).await;
            return;
        }
    };
    match &request.action {
        Action::Run => {}
        other => {
            tracing::info!(peer, action = ?other, args = ?request.args, "client request");
            let code = instance_action(other.clone(), request.args, &ctx, &mut rd, &mut wr).await;
            tracing::info!(peer, action = ?other, "client request ended: {code}");
            return;
        }
    }
    let command =
        match RemoteCli::try_parse_from(std::iter::once("ig".to_string()).chain(request.args.clone())) {
            Ok(cli) => cli.command,
            Err(e) => {
                // --help and friends are answers, not failures.
                let text = e.render().to_string();
                let code = if e.use_stderr() { 2 } else { 0 };
                if code == 0 {
                    let _ = wr.write_all(&proto::frame(Kind::Stdout, text.as_bytes())).await;
                }
                let _ = send_exit(&mut wr, code, (code != 0).then_some(text)).await;
                return;
            }
        };
    tracing::info!(peer, args = ?request.args, "client run");
    let status = run(command, &request, &ctx, &mut rd, &mut wr).await;
    tracing::info!(peer, args = ?request.args, "client run ended: {status:?}");
}

async fn read_request(rd: &mut (impl AsyncRead + Unpin)) -> Result<Request, ProtoError> {
    let mut header = [0u8; 5];
    rd.read_exact(&mut header).await?;
    let (kind, len) = proto::parse_header(header, MAX_REQUEST)?;
    if kind != Kind::Request {
        return Err(ProtoError::Kind(kind as u8));
    }
    let mut payload = vec![0u8; len];
    rd.read_exact(&mut payload).await?;
    proto::parse_request(&payload)
}

async fn send_exit(
    wr: &mut (impl AsyncWrite + Unpin),
    code: i32,
    error: Option<String>,
) -> std::io::Result<()> {
    wr.write_all(&proto::json_frame(Kind::Exit, &Exit { code, error })).await?;
    wr.flush().await?;
    wr.shutdown().await
}

/// A pipe for a command's output; a large one, so a busy gadget rarely
/// waits for the relay (the kernel caps it at fs.pipe-max-size).
fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let _ = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok((r, w))
}

/// Runs the command and relays its output; returns its exit code.
async fn run(
    command: crate::cli::GadgetCommand,
    request: &Request,
    ctx: &Arc<Context>,
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
) -> i32 {
    let pipes = (|| Ok::<_, std::io::Error>((pipe_pair()?, pipe_pair()?)))();
    let ((out_r, out_w), (err_r, err_w)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            let _ = send_exit(wr, 1, Some(format!("daemon: {e}"))).await;
            return 1;
        }
    };
    let (Ok(mut out_rx), Ok(mut err_rx)) =
        (pipe::Receiver::from_owned_fd(out_r), pipe::Receiver::from_owned_fd(err_r))
    else {
        let _ = send_exit(wr, 1, Some("daemon: cannot set up the output pipes".into())).await;
        return 1;
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, mut started_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let io = RunIo {
        out: Box::new(std::fs::File::from(out_w)),
        err: Box::new(std::fs::File::from(err_w)),
        terminal_width: request.terminal_width.map(usize::from),
        stop: Box::pin(async move {
            let _ = stop_rx.await;
        }),
        started: Some(Box::new(move || {
            let _ = started_tx.send(());
        })),
        tee: false,
        daemon_counter: false,
    };
    let done = Box::new(move |result| {
        let _ = done_tx.send(result);
    });
    if let Err(e) = super::spawn_command(command, &ctx.runner, io, "ig-client", done) {
        let _ = send_exit(wr, 1, Some(format!("daemon: {e}"))).await;
        return 1;
    }

    let mut stop_tx = Some(stop_tx);
    let mut stop = move || {
        if let Some(tx) = stop_tx.take() {
            let _ = tx.send(());
        }
    };
    let (mut out_open, mut err_open, mut client_open, mut client_gone) = (true, true, true, false);
    let mut started_pending = true;
    // Output is read right after a 5-byte gap, so each frame is sent as it
    // was read, header included, with no copy.
    let mut out_buf = vec![0u8; 5 + 256 * 1024];
    let mut err_buf = vec![0u8; 5 + 4096];
    let mut client_buf = [0u8; 64];
    while out_open || err_open {
        let (kind, buf, n) = tokio::select! {
            r = out_rx.read(&mut out_buf[5..]), if out_open => match r {
                Ok(0) | Err(_) => { out_open = false; continue }
                Ok(n) => (Kind::Stdout, &mut out_buf, n),
            },
            r = err_rx.read(&mut err_buf[5..]), if err_open => match r {
                Ok(0) | Err(_) => { err_open = false; continue }
                Ok(n) => (Kind::Stderr, &mut err_buf, n),
            },
            r = &mut started_rx, if started_pending => {
                started_pending = false;
                if r.is_err() { continue }
                (Kind::Started, &mut err_buf, 0)
            },
            // Anything after the request, or the end of the stream, is "stop".
            _ = rd.read(&mut client_buf), if client_open => {
                client_open = false;
                stop();
                continue;
            },
        };
        if client_gone {
            continue; // keep draining so the command never blocks on a full pipe
        }
        buf[..4].copy_from_slice(&((n + 1) as u32).to_be_bytes());
        buf[4] = kind as u8;
        if wr.write_all(&buf[..5 + n]).await.is_err() || wr.flush().await.is_err() {
            client_gone = true;
            stop();
        }
    }
    let (code, error) = match done_rx.await {
        Ok(Ok(())) => (0, None),
        Ok(Err(e)) => (1, Some(e)),
        Err(_) => (1, Some("daemon: the command ended abnormally".into())),
    };
    if !client_gone {
        let _ = send_exit(wr, code, error).await;
    }
    code
}

/// A request about headless instances; returns its exit code.
async fn instance_action(
    action: Action,
    args: Vec<String>,
    ctx: &Context,
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
) -> i32 {
    let instances = &ctx.instances;
    let (code, text, error) = match action {
        // Handled by `run`; never sent here.
        Action::Run => (2, String::new(), Some("daemon: a run is not an instance request".into())),
        Action::Detach { name } => match instances.create(name, args).await {
            Ok(name) => (0, format!("{name}\n"), None),
            Err(e) => (1, String::new(), Some(e.to_string())),
        },
        Action::List { json } => {
            let rows = instances.list();
            let text = if json {
                let mut t = serde_json::to_string_pretty(&rows).unwrap_or_default();
                t.push('\n');
                t
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                instances::table(&rows, now)
            };
            (0, text, None)
        }
        Action::Delete { name } => match instances.delete(&name).await {
            Ok(()) => (0, format!("{name}\n"), None),
            Err(e) => (1, String::new(), Some(e.to_string())),
        },
        Action::Attach { name } => match instances.get(&name) {
            Some(instance) => attach(&instance, rd, wr).await,
            None => (1, String::new(), Some(instances::InstanceError::NotFound(name).to_string())),
        },
    };
    if !text.is_empty() && wr.write_all(&proto::frame(Kind::Stdout, text.as_bytes())).await.is_err() {
        return code;
    }
    let _ = send_exit(wr, code, error).await;
    code
}

/// Streams an instance's output until it ends or the client goes away
/// (which leaves the instance running). A client too slow for the output
/// is told how much it missed.
async fn attach(
    instance: &instances::Instance,
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
) -> (i32, String, Option<String>) {
    use tokio::sync::broadcast::error::RecvError;
    let (mut output, mut state) = instance.subscribe();
    let ended = |s: &instances::State| match s {
        instances::State::Stopped => Some((0, String::new(), None)),
        instances::State::Failed(e) => Some((1, String::new(), Some(e.clone()))),
        _ => None,
    };
    if let Some(end) = ended(&state.borrow_and_update()) {
        return end;
    }
    if wr.write_all(&proto::frame(Kind::Started, &[])).await.is_err() || wr.flush().await.is_err() {
        return (0, String::new(), None);
    }
    let mut client_buf = [0u8; 64];
    loop {
        let frame = tokio::select! {
            r = output.recv() => match r {
                Ok((kind, bytes)) => proto::frame(kind, &bytes),
                Err(RecvError::Lagged(n)) => proto::frame(
                    Kind::Stderr,
                    format!("WARN: gadgetctl attach: {n} chunks of output skipped: this client reads too slowly\n").as_bytes(),
                ),
                Err(RecvError::Closed) => return (0, String::new(), None),
            },
            changed = state.changed() => {
                let end = if changed.is_err() { Some((0, String::new(), None)) } else { ended(&state.borrow_and_update()) };
                if let Some(end) = end {
                    // What it wrote before it ended.
                    while let Ok((kind, bytes)) = output.try_recv() {
                        if wr.write_all(&proto::frame(kind, &bytes)).await.is_err() {
                            break;
                        }
                    }
                    return end;
                }
                continue;
            }
            _ = rd.read(&mut client_buf) => return (0, String::new(), None),
        };
        if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
            return (0, String::new(), None);
        }
    }
}
