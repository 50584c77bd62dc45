//! `raft-kv --local N`: a demo cluster of N nodes on 127.0.0.1, each this program run as a
//! child process, supervised until Ctrl-C.
//!
//! Each child gets a pipe as standard input and the hidden flag `--stop-on-stdin-eof`: the
//! pipe closes when this process closes it to stop the cluster, and also when this
//! process dies in any way (SIGKILL included), so the nodes never outlive the demo.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::StopSignal;
use crate::cli::LocalSettings;

/// How long the nodes may take to start and elect a leader.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How long the nodes may take to stop once asked; then they are killed.
const STOP_PATIENCE: Duration = Duration::from_secs(15);

/// How often the children are checked on.
const POLL: Duration = Duration::from_millis(100);

/// One child node.
struct LocalNode {
    id: u16,
    http_port: u16,
    log: PathBuf,
    arguments: Vec<OsString>,
    child: Option<Child>,
}

impl LocalNode {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process, its stderr appended to its log.
    fn spawn(&mut self, program: &Path) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|error| format!("cannot open {}: {error}", self.log.display()))?;
        let child = Command::new(program)
            .args(&self.arguments)
            .arg("--stop-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start node {}: {error}", self.id))?;
        self.child = Some(child);
        Ok(())
    }

    /// The exit status, once, when the process has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            Ok(None) => None,
            Err(_) => {
                // It cannot be waited for: it is not ours to watch any more.
                self.child = None;
                None
            }
        }
    }

    /// The last non-empty line of its log, to say why it failed.
    fn last_log_line(&self) -> String {
        std::fs::read_to_string(&self.log)
            .ok()
            .and_then(|log| {
                log.lines()
                    .rev()
                    .find(|line| !line.trim().is_empty())
                    .map(|line| line.trim_start_matches("error: ").to_string())
            })
            .unwrap_or_else(|| "(its log is empty)".to_string())
    }
}

/// Runs the demo until a signal, or until every node has exited.
pub(crate) async fn run(settings: LocalSettings) -> Result<(), String> {
    let mut stop_signal = StopSignal::install()
        .map_err(|error| format!("cannot install signal handlers: {error}"))?;
    std::fs::create_dir_all(&settings.directory)
        .map_err(|error| format!("cannot create {}: {error}", settings.directory.display()))?;
    let program = std::env::current_exe()
        .map_err(|error| format!("cannot find this program to start the nodes: {error}"))?;
    let mut nodes: Vec<LocalNode> = (1..=settings.nodes)
        .map(|id| LocalNode {
            id,
            http_port: settings.http_port(id),
            log: settings.log(id),
            arguments: settings.node_arguments(id),
            child: None,
        })
        .collect();
    for position in 0..nodes.len() {
        if let Err(message) = nodes[position].spawn(&program) {
            let _ = stop(&mut nodes).await;
            return Err(message);
        }
    }

    let leader = tokio::select! {
        ready = wait_until_ready(&mut nodes) => match ready {
            Ok(leader) => leader,
            Err(message) => {
                let _ = stop(&mut nodes).await;
                return Err(message);
            }
        },
        signal = stop_signal.received() => {
            println!("{signal}: stopping the cluster");
            return stop(&mut nodes).await;
        }
    };
    print_banner(&settings, &nodes, leader);

    let mut restart_requests = watch_stdin_lines();
    loop {
        tokio::select! {
            signal = stop_signal.received() => {
                println!("{signal}: stopping the cluster");
                break;
            }
            Some(()) = restart_requests.recv() => {
                for node in nodes.iter_mut().filter(|node| node.child.is_none()) {
                    match node.spawn(&program) {
                        Ok(()) => println!(
                            "node {} restarted (pid {})",
                            node.id,
                            node.pid().unwrap_or_default()
                        ),
                        Err(message) => println!("{message}"),
                    }
                }
            }
            () = tokio::time::sleep(POLL) => {}
        }
        for node in &mut nodes {
            if let Some(status) = node.exited() {
                println!(
                    "node {} exited ({status}); press Enter to restart stopped nodes",
                    node.id
                );
            }
        }
        if nodes.iter().all(|node| node.child.is_none()) {
            return Err("every node has exited".to_string());
        }
    }
    stop(&mut nodes).await
}

/// Waits until every node answers `/status` and names the same leader; returns its id.
async fn wait_until_ready(nodes: &mut [LocalNode]) -> Result<u64, String> {
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        for node in nodes.iter_mut() {
            if let Some(status) = node.exited() {
                return Err(format!(
                    "node {} exited while starting ({status}): {} (log: {})",
                    node.id,
                    node.last_log_line(),
                    node.log.display()
                ));
            }
        }
        let mut leaders = Vec::new();
        for node in nodes.iter() {
            // Only this node's answer counts: another process may hold its port (another
            // demo, say), and then this node is about to exit.
            let pid = node.pid().map(u64::from);
            leaders.push(
                status(node.http_port)
                    .await
                    .filter(|document| document["pid"].as_u64() == pid)
                    .and_then(|document| document["leader"].as_u64()),
            );
        }
        if let Some(Some(leader)) = leaders.first()
            && leaders.iter().all(|named| *named == Some(*leader))
        {
            return Ok(*leader);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the nodes did not agree on a leader within {START_PATIENCE:?} (leaders named: \
                 {leaders:?}); see the logs in {}",
                nodes
                    .first()
                    .and_then(|node| node.log.parent())
                    .map_or_else(String::new, |folder| folder.display().to_string())
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `GET /status` on 127.0.0.1:`port`, as JSON; `None` when it does not answer 200.
async fn status(port: u16) -> Option<serde_json::Value> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request =
            format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        if !answer.starts_with(b"HTTP/1.1 200") {
            return None;
        }
        let body = answer.windows(4).position(|window| window == b"\r\n\r\n")? + 4;
        serde_json::from_slice(&answer[body..]).ok()
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

fn print_banner(settings: &LocalSettings, nodes: &[LocalNode], leader: u64) {
    let url = |node: &LocalNode| format!("http://127.0.0.1:{}", node.http_port);
    println!(
        "A local raft-kv cluster of {} node(s) runs; data and logs in {}/",
        nodes.len(),
        settings.directory.display()
    );
    for node in nodes {
        println!(
            "  node {}: {}  (raft 127.0.0.1:{}, pid {}, log {})",
            node.id,
            url(node),
            settings.raft_port(node.id),
            node.pid().unwrap_or_default(),
            node.log.display()
        );
    }
    println!("Node {leader} leads.");
    println!();
    println!("Try:");
    let leading = nodes.iter().find(|node| u64::from(node.id) == leader);
    // Reads go to nodes that survive the leader's end.
    let survivors: Vec<&LocalNode> = nodes
        .iter()
        .filter(|node| u64::from(node.id) != leader)
        .collect();
    let reader = survivors.last().copied().unwrap_or(&nodes[0]);
    let mut commands: Vec<(String, String)> = vec![
        (
            format!(
                "curl -L -X PUT {}/my-key --data-binary hello",
                url(&nodes[0])
            ),
            "204 once committed".to_string(),
        ),
        (
            format!("curl -L {}/my-key", url(reader)),
            "200 hello".to_string(),
        ),
        (
            format!("curl {}/status", url(&nodes[0])),
            "its role, the leader, its pid".to_string(),
        ),
    ];
    if let (Some(leading), [first_survivor, second_survivor, ..]) = (leading, &survivors[..]) {
        commands.push((
            format!("kill -9 {}", leading.pid().unwrap_or_default()),
            format!("the leader, node {leader}: another takes over"),
        ));
        commands.push((
            format!("curl -L {}/my-key", url(reader)),
            "still hello".to_string(),
        ));
        commands.push((
            format!(
                "curl -L -X POST {}/leader --data-binary {}",
                url(first_survivor),
                second_survivor.id
            ),
            format!("node {} leads", second_survivor.id),
        ));
    }
    let width = commands
        .iter()
        .map(|(command, _)| command.len())
        .max()
        .unwrap_or(0);
    for (command, comment) in commands {
        println!("  {command:<width$}   # {comment}");
    }
    println!("Enter restarts stopped nodes; Ctrl-C stops the cluster.");
}

/// A request per line read from standard input (Enter); nothing once it ends.
fn watch_stdin_lines() -> mpsc::Receiver<()> {
    let (lines, requests) = mpsc::channel(4);
    let spawned = std::thread::Builder::new()
        .name("stdin-lines".to_string())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            while matches!(stdin.read_line(&mut line), Ok(count) if count > 0) {
                line.clear();
                if lines.blocking_send(()).is_err() {
                    break;
                }
            }
        });
    // Without the thread, Enter does nothing; the demo still runs.
    drop(spawned);
    requests
}

/// Stops every running node gracefully (by closing its standard input), and kills those
/// still running after [`STOP_PATIENCE`].
async fn stop(nodes: &mut [LocalNode]) -> Result<(), String> {
    for node in nodes.iter_mut() {
        if let Some(child) = node.child.as_mut() {
            drop(child.stdin.take());
        }
    }
    let deadline = Instant::now() + STOP_PATIENCE;
    let mut killed = Vec::new();
    loop {
        for node in nodes.iter_mut() {
            if let Some(status) = node.exited() {
                println!("node {} stopped ({status})", node.id);
            }
        }
        if nodes.iter().all(|node| node.child.is_none()) {
            break;
        }
        if Instant::now() >= deadline {
            for node in nodes.iter_mut() {
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                    killed.push(node.id.to_string());
                }
            }
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if killed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "node(s) {} did not stop within {STOP_PATIENCE:?} and were killed",
            killed.join(", ")
        ))
    }
}
