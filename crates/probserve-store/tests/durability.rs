//! A real `kill -9` test: a child process writes in a loop and prints each
//! acknowledged write; the parent SIGKILLs it at an arbitrary point, reopens the
//! file and checks that every acknowledged write is there and nothing else is, and
//! that a rollout write and the label it moves landed together or not at all.
//!
//! The child is this same test binary re-executed with `--exact writer_child`
//! and `PROBSERVE_STORE_WRITER=<path>`; without that variable `writer_child` does
//! nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use probserve_store::conformance::new_version;
use probserve_store::{AuditEntry, LabelMove, RedbStore, RolloutWrite, Store};
use serde_json::json;

const WRITER_ENV: &str = "PROBSERVE_STORE_WRITER";
const ROUND_ENV: &str = "PROBSERVE_STORE_WRITER_ROUND";
/// Acknowledged writes the parent waits for before killing the child, per round.
const ACKS_BEFORE_KILL: usize = 60;
const ROUNDS: u64 = 3;
/// Bound on the child's loop so an orphaned child stops on its own.
const CHILD_MAX_WRITES: u64 = 20_000;

fn version_of(round: u64, i: u64) -> String {
    format!("{round}.0.{i}")
}

fn source_of(round: u64, i: u64) -> String {
    format!("model durable {{ round {round} write {i} }}")
}

fn audit(round: u64, i: u64) -> AuditEntry {
    AuditEntry {
        at_millis: i,
        actor: "writer".into(),
        subject: format!("rollout/r{round}"),
        action: format!("write-{i}"),
        detail: json!({ "i": i }),
    }
}

/// Child mode: register versions and update a rollout (with audit, moving the
/// `stable` label to the version just registered, as a promotion does) in a loop,
/// printing `ACK <i> <version seq> <rollout revision> <audit seq>` after each
/// acknowledged pair of writes.
#[test]
fn writer_child() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let store = RedbStore::open(&path).expect("child: open");
    let rollout = format!("r{round}");
    let mut stdout = std::io::stdout().lock();
    let mut revision = None;
    for i in 0..CHILD_MAX_WRITES {
        let reg = store
            .register_version(new_version(
                "durable",
                &version_of(round, i),
                &source_of(round, i),
            ))
            .expect("child: register");
        let version = version_of(round, i);
        let commit = store
            .commit_rollout(&RolloutWrite {
                id: rollout.clone(),
                expected_revision: revision,
                value: json!({ "i": i }),
                audit: audit(round, i),
                require_servable: vec![("durable".into(), version.clone())],
                labels: vec![LabelMove {
                    model: "durable".into(),
                    label: "stable".into(),
                    version,
                    only_if_unset: false,
                }],
                require_labels: Vec::new(),
                holds: Vec::new(),
            })
            .expect("child: rollout");
        revision = Some(commit.revision);
        let line = format!(
            "ACK {i} {} {} {}\n",
            reg.version().sequence,
            commit.revision,
            commit.audit_seq
        );
        // The parent closing the pipe ends the loop (Rust ignores SIGPIPE).
        if stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    i: u64,
    version_seq: u64,
    revision: u64,
    audit_seq: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    // The harness prints `test writer_child ... ` without a newline before the
    // child's output, so the first ack can share its line.
    let line = line.strip_suffix('\n')?;
    let rest = &line[line.find("ACK ")? + 4..];
    let nums: Vec<u64> = rest
        .split(' ')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match nums[..] {
        [i, version_seq, revision, audit_seq] => Some(Ack {
            i,
            version_seq,
            revision,
            audit_seq,
        }),
        _ => None,
    }
}

/// Runs one child, kills it after `ACKS_BEFORE_KILL` acks, returns every ack it printed.
fn run_and_kill_child(path: &Path, round: u64) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, path)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut acks = Vec::new();
    let mut line = String::new();
    while acks.len() < ACKS_BEFORE_KILL {
        line.clear();
        if reader.read_line(&mut line).expect("read child stdout") == 0 {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("child exited after {} acks; stderr:\n{err}", acks.len());
        }
        acks.extend(parse_ack(&line));
    }
    // SIGKILL while the child is in the middle of its write loop.
    child.kill().expect("kill child");
    let status = child.wait().expect("wait child");
    assert!(
        !status.success(),
        "child must have been killed, got {status:?}"
    );
    // Lines written before the kill but not read yet were acknowledged too.
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => acks.extend(parse_ack(&line)),
        }
    }
    acks
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    if std::env::var_os(WRITER_ENV).is_some() {
        return; // We are the child; only `writer_child` runs there.
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("durable.redb");
    let mut total_versions = 0usize;
    for round in 0..ROUNDS {
        let acks = run_and_kill_child(&path, round);
        assert!(acks.len() >= ACKS_BEFORE_KILL);
        assert!(
            acks.iter().enumerate().all(|(k, a)| a.i == k as u64),
            "acks are consecutive"
        );

        // The file opens (redb repairs it if the kill hit a commit) and holds every ack.
        let store = RedbStore::open(&path).expect("reopen after kill -9");
        for ack in &acks {
            let v = store
                .get_version("durable", &version_of(round, ack.i))
                .expect("get_version")
                .unwrap_or_else(|| panic!("acknowledged version {} lost", ack.i));
            assert_eq!(v.sequence, ack.version_seq);
            assert_eq!(v.source, source_of(round, ack.i));
        }
        let last = acks[acks.len() - 1];
        let audit = store.audit_since(last.audit_seq - 1, 1).expect("audit");
        assert_eq!(
            audit.first().map(|r| r.entry.clone()),
            Some(self::audit(round, last.i))
        );

        // At most one write past the last ack may have committed (killed before printing).
        let (revision, value) = store
            .get_rollout(&format!("r{round}"))
            .expect("get_rollout")
            .expect("acknowledged rollout lost");
        let done = value["i"].as_u64().expect("rollout value");
        assert!(
            revision == last.revision || revision == last.revision + 1,
            "revision {revision}, last ack {}",
            last.revision
        );
        assert_eq!(done + 1, revision, "rollout state and revision agree");
        assert_eq!(
            store
                .get_label("durable", "stable")
                .expect("label")
                .as_deref(),
            Some(version_of(round, done).as_str()),
            "the label moved in the rollout's transaction landed with it"
        );
        let round_versions = store
            .list_versions("durable", 1000, "")
            .and_then(|first| {
                let mut all = first.items;
                let mut token = first.next_page_token;
                while let Some(t) = token {
                    let page = store.list_versions("durable", 1000, &t)?;
                    all.extend(page.items);
                    token = page.next_page_token;
                }
                Ok(all)
            })
            .expect("list_versions");
        let n = round_versions.len() - total_versions;
        assert!(
            n == acks.len() || n == acks.len() + 1,
            "{n} versions for {} acks",
            acks.len()
        );
        total_versions = round_versions.len();
        // Rollout writes happen after the version write, so a committed extra rollout
        // write implies a committed extra version.
        assert!(revision == last.revision || n == acks.len() + 1);

        eprintln!(
            "round {round}: {} acks, {n} versions, rollout revision {revision}",
            acks.len()
        );

        // And the store is still writable.
        let extra =
            store.register_version(new_version("durable-check", &format!("{round}.0.0"), "ok"));
        assert!(extra.is_ok_and(|o| o.is_created()));
    }
}
