//! The `--local` demo: one command starts a cluster of child processes, prints their URLs
//! and pids, survives the SIGKILL of its leader, and stops every node on SIGTERM; its
//! nodes also stop when the demo itself is SIGKILLed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BINARY, PATIENCE, eventually, get, request, reserve_port_block, split_location};

/// A running `raft-kv --local`; dropping it kills it and the nodes it printed.
struct Demo {
    parent: Child,
    lines: mpsc::Receiver<String>,
    /// Every line printed so far.
    printed: Vec<String>,
    /// (node id, HTTP port, pid) as printed.
    nodes: Vec<(u64, u16, u32)>,
    _directory: tempfile::TempDir,
}

impl Demo {
    /// Starts `--local count` on free ports and waits for its banner.
    fn start(count: u16) -> Demo {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let offsets: Vec<u16> = (0..count).chain(10..10 + count).collect();
        let (port, reserved) = reserve_port_block(&offsets);
        drop(reserved);
        let mut parent = Command::new(BINARY)
            .args(["--local", &count.to_string(), "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(directory.path().join("demo"))
            .args(["--tick-ms", "20"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("raft-kv --local starts");
        let stdout = parent.stdout.take().expect("its stdout");
        let mut demo = Demo {
            parent,
            lines: read_lines(stdout),
            printed: Vec::new(),
            nodes: Vec::new(),
            _directory: directory,
        };
        demo.wait_for_line("Ctrl-C stops the cluster");
        for line in &demo.printed {
            // "  node 1: http://127.0.0.1:PORT  (raft 127.0.0.1:PORT, pid PID, log ...)"
            let Some(rest) = line.trim().strip_prefix("node ") else {
                continue;
            };
            let Some((id, rest)) = rest.split_once(": http://127.0.0.1:") else {
                continue;
            };
            let (port, rest) = rest.split_once(' ').expect("a port");
            let pid = rest
                .split(", pid ")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .expect("a pid");
            demo.nodes.push((
                id.parse().expect("an id"),
                port.parse().expect("a port"),
                pid.parse().expect("a pid"),
            ));
        }
        assert_eq!(demo.nodes.len(), usize::from(count), "{:#?}", demo.printed);
        for (position, (id, http_port, _)) in demo.nodes.iter().enumerate() {
            assert_eq!(*id, position as u64 + 1);
            assert_eq!(*http_port, port + position as u16);
        }
        demo
    }

    /// Waits for a printed line containing `text`; returns it.
    fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.printed.iter().find(|line| line.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.printed.push(line),
                Err(error) => panic!(
                    "no line with {text:?} ({error}); printed: {:#?}",
                    self.printed
                ),
            }
        }
    }

    /// SIGTERMs the demo and waits for its exit code.
    fn terminate(&mut self) -> Option<i32> {
        signal("TERM", self.parent.id());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.parent.try_wait().expect("waitable") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the demo did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.parent.kill();
        let _ = self.parent.wait();
        for (_, _, pid) in &self.nodes {
            if alive(*pid) {
                signal("KILL", *pid);
            }
        }
    }
}

fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => Command::new("kill")
            .arg("-0")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success()),
    }
}

/// A write through `port`, following redirects, until it succeeds.
fn write(port: u16, target: &str, body: &[u8]) {
    eventually(&format!("PUT {target}"), || {
        let mut port = port;
        let mut target = target.to_string();
        for _ in 0..5 {
            let reply = request(port, "PUT", &target, body)?;
            match reply.status {
                204 => return Ok(()),
                307 => {
                    (port, target) = split_location(reply.header("location").ok_or("no Location")?);
                }
                status => return Err(format!("{status}: {}", reply.text())),
            }
        }
        Err("too many redirects".to_string())
    });
}

fn expect_value(port: u16, target: &str, expected: &str) {
    eventually(&format!("GET {target} on :{port}"), || {
        let reply = get(port, target)?;
        if (reply.status, reply.text().as_str()) == (200, expected) {
            Ok(())
        } else {
            Err(format!("{}: {}", reply.status, reply.text()))
        }
    });
}

#[test]
fn the_local_demo_survives_its_leader_and_stops_on_sigterm() {
    let mut demo = Demo::start(3);
    assert!(
        demo.printed
            .iter()
            .any(|line| line.contains("curl -L -X PUT")),
        "{:#?}",
        demo.printed
    );
    let ports: Vec<u16> = demo.nodes.iter().map(|(_, port, _)| *port).collect();
    write(ports[0], "/my-key", b"hello");
    for port in &ports {
        expect_value(*port, "/my-key", "hello");
    }

    // The leader's pid, from /status as the banner says; SIGKILL it.
    let status = get(ports[0], "/status").expect("status").json();
    let leader = status["leader"].as_u64().expect("a leader");
    let leader_port = ports[leader as usize - 1];
    let leader_status = get(leader_port, "/status").expect("status").json();
    let pid = leader_status["pid"].as_u64().expect("a pid") as u32;
    assert_eq!(pid, demo.nodes[leader as usize - 1].2);
    signal("KILL", pid);
    demo.wait_for_line(&format!("node {leader} exited"));

    let survivors: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|port| *port != leader_port)
        .collect();
    for port in &survivors {
        expect_value(*port, "/my-key", "hello");
    }
    write(survivors[0], "/my-key", b"again");
    expect_value(survivors[1], "/my-key", "again");

    // SIGTERM: every node stops, then the demo, with code 0.
    assert_eq!(demo.terminate(), Some(0), "{:#?}", demo.printed);
    for (id, port, pid) in &demo.nodes {
        assert!(!alive(*pid), "node {id} (pid {pid}) outlived the demo");
        assert!(get(*port, "/status").is_err(), "node {id} still serves");
    }
    while let Ok(line) = demo.lines.recv_timeout(Duration::from_secs(1)) {
        demo.printed.push(line);
    }
    for id in survivors.iter().map(|port| port - ports[0] + 1) {
        assert!(
            demo.printed
                .iter()
                .any(|line| line.starts_with(&format!("node {id} stopped (exit status: 0)"))),
            "{:#?}",
            demo.printed
        );
    }
}

// Even a SIGKILLed demo leaves no node behind: each stops when its standard input, a
// pipe from the demo, closes.
#[test]
fn the_nodes_of_a_killed_demo_stop_by_themselves() {
    let mut demo = Demo::start(1);
    let (_, port, pid) = demo.nodes[0];
    write(port, "/k", b"v");
    demo.parent.kill().expect("SIGKILL");
    demo.parent.wait().expect("reaped");
    eventually("the orphaned node stops", || {
        if alive(pid) || get(port, "/status").is_ok() {
            Err(format!("pid {pid} still runs"))
        } else {
            Ok(())
        }
    });
}

// A demo whose ports another demo holds fails in one line, exit code 1, without taking
// the other's nodes for its own; the other goes on.
#[test]
fn a_demo_on_taken_ports_fails_and_leaves_the_other_running() {
    let first = Demo::start(1);
    let (_, port, pid) = first.nodes[0];
    let directory = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(BINARY)
        .args(["--local", "1", "--port", &port.to_string()])
        .arg("--data-dir")
        .arg(directory.path().join("second"))
        .args(["--tick-ms", "20"])
        .stdin(Stdio::null())
        .output()
        .expect("raft-kv runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr:?}");
    assert!(errors[0].contains("cannot listen"), "{stderr:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("Try:"), "{stdout:?}");
    assert!(alive(pid));
    write(port, "/still", b"here");
}

// Flags that do not make a local cluster: one line, exit code 2.
#[test]
fn bad_local_flags_are_one_line_errors() {
    for arguments in [
        &["--local", "0"][..],
        &["--local", "10"],
        &["--local", "3", "--id", "2"],
        &["--local", "3", "--cluster", "127.0.0.1:1"],
        &["--local", "3", "--join"],
        &["--local", "3", "--port", "0"],
        &["--local", "3", "--port", "65530"],
        &["--local", "3", "--tls-ca", "ca.pem"],
    ] {
        let output = Command::new(BINARY)
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .expect("raft-kv runs");
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
        assert_eq!(lines.len(), 1, "{arguments:?}: {stderr:?}");
        assert!(lines[0].starts_with("error: "), "{arguments:?}: {stderr:?}");
    }
}
