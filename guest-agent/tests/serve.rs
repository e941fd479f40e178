//! The protocol loop driven through in-memory streams: events, barriers, bad input.

use std::io::Cursor;

use guest_agent::serve::serve;
use serde_json::json;
use workloads::content::{Run, Source};
use workloads::protocol::{AgentMsg, HostMsg, PROTOCOL_VERSION};
use workloads::{Op, OpOutcome, Pattern, Workload};

/// Run `serve` over `input` and parse every line it wrote.
fn converse(input: &[u8]) -> Vec<AgentMsg> {
    let mut out = Vec::new();
    serve(Cursor::new(input.to_vec()), &mut out).expect("serve");
    String::from_utf8(out)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("agent line parses"))
        .collect()
}

fn line(msg: &HostMsg) -> String {
    serde_json::to_string(msg).expect("serialise") + "\n"
}

fn run_msg(dir: &str, ops: Vec<Op>, barriers: Vec<usize>, markers: bool) -> HostMsg {
    HostMsg::Run {
        dir: dir.to_owned(),
        workload: Workload {
            name: "t".into(),
            seed: 11,
            profile: None,
            ops,
        },
        barriers,
        markers,
    }
}

fn hello() -> AgentMsg {
    AgentMsg::Hello {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

#[test]
fn run_streams_events_stops_at_a_barrier_and_reads_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("deep/work");
    let dir_s = dir.to_str().expect("utf-8 path").to_owned();
    let ops = vec![
        Op::create("a"),
        Op::Pwrite {
            file: "a".into(),
            off: 0,
            len: 16,
            pattern: None,
        },
        Op::Fsync { file: "zz".into() },
    ];
    let mut input = line(&run_msg(&dir_s, ops, vec![1, 99], true));
    input += "this is not json\n";
    input += &line(&HostMsg::ReadFiles {
        dir: dir_s.clone(),
        names: vec!["a".into()],
        seed: 11,
        sources: Vec::new(),
    });
    input += &line(&HostMsg::Continue);
    input += "\n";
    input += &line(&HostMsg::ReadFiles {
        dir: dir_s.clone(),
        names: vec!["a".into(), "missing".into()],
        seed: 11,
        sources: vec![Source::at_home(2)],
    });
    input += &line(&HostMsg::Quit);
    input += &line(&HostMsg::Continue); // after Quit: never read

    let msgs = converse(input.as_bytes());

    let data = Pattern::new(11, 2).bytes(0, 16);
    // Asked without the pattern: literal bytes; with it: one pattern run.
    let literal = vec![Run::Hex {
        hex: data.iter().map(|b| format!("{b:02x}")).collect(),
    }];
    let as_pattern = vec![Run::Pattern {
        id: 2,
        shift: 0,
        len: 16,
    }];
    assert_eq!(msgs[0], hello());
    assert_eq!(msgs[1], AgentMsg::OpStarted { k: 0 });
    assert_eq!(
        msgs[2],
        AgentMsg::OpDone {
            k: 0,
            outcome: OpOutcome::ok(0)
        }
    );
    assert_eq!(msgs[3], AgentMsg::OpStarted { k: 1 });
    assert_eq!(
        msgs[4],
        AgentMsg::OpDone {
            k: 1,
            outcome: OpOutcome::ok(16)
        }
    );
    assert_eq!(msgs[5], AgentMsg::Barrier { k: 1 });
    assert!(matches!(&msgs[6], AgentMsg::Error { message } if message.contains("malformed")));
    assert!(matches!(&msgs[7], AgentMsg::Files { files } if files[0].runs == literal));
    assert_eq!(msgs[8], AgentMsg::OpStarted { k: 2 });
    assert_eq!(
        msgs[9],
        AgentMsg::OpDone {
            k: 2,
            outcome: OpOutcome::failed(libc::EBADF)
        }
    );
    assert!(matches!(msgs[10], AgentMsg::Finished { ops: 3, .. }));
    let AgentMsg::Files { files } = &msgs[11] else {
        panic!("expected files, got {:?}", msgs[11])
    };
    assert_eq!(
        (files[0].exists, files[0].size, &files[0].runs),
        (true, 16, &as_pattern)
    );
    assert_eq!(
        (files[1].exists, files[1].size, files[1].error.as_deref()),
        (false, 0, None)
    );
    assert_eq!(msgs.len(), 12);
}

#[test]
fn end_of_input_at_a_barrier_ends_the_session_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir_s = tmp.path().to_str().expect("utf-8 path").to_owned();
    let input = line(&run_msg(&dir_s, vec![Op::Sync, Op::Sync], vec![0], false));

    let msgs = converse(input.as_bytes());

    assert_eq!(msgs.last(), Some(&AgentMsg::Barrier { k: 0 }));
    assert_eq!(msgs.len(), 4);
}

#[test]
fn bad_requests_get_errors_and_the_loop_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file_as_dir = tmp.path().join("plain");
    std::fs::write(&file_as_dir, b"x").expect("write");
    let mut input = Vec::new();
    input.extend_from_slice(b"\xff\xfe not utf-8\n");
    input.extend_from_slice(b"{\"msg\":\"run\"}\n");
    input.extend_from_slice(b"{\"msg\":\"launch\"}\n");
    input.extend_from_slice(
        json!({"msg": "read_files", "dir": "/", "names": [], "extra": 1})
            .to_string()
            .as_bytes(),
    );
    input.push(b'\n');
    input.extend_from_slice(line(&HostMsg::Continue).as_bytes());
    let run_in_file = run_msg(
        file_as_dir.to_str().expect("utf-8"),
        vec![Op::Sync],
        vec![],
        false,
    );
    input.extend_from_slice(line(&run_in_file).as_bytes());
    input.extend_from_slice(&[b'['; 10_000]);
    input.push(b'\n');
    // The last line has no newline before EOF.
    input.extend_from_slice(br#"{"msg":"read_files","dir":"/nonexistent","names":["a"]}"#);

    let msgs = converse(&input);

    assert_eq!(msgs[0], hello());
    let errors = msgs[1..8]
        .iter()
        .filter(|m| matches!(m, AgentMsg::Error { .. }))
        .count();
    assert_eq!(errors, 7, "{msgs:?}");
    assert!(matches!(&msgs[8], AgentMsg::Files { files } if !files[0].exists));
    assert_eq!(msgs.len(), 9);
}

#[test]
fn extents_are_answered_in_request_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 path").to_owned();
    std::fs::write(tmp.path().join("a"), [1u8; 8192]).expect("write");
    let ask = HostMsg::Extents {
        dir,
        names: vec!["a".into(), "missing".into()],
    };

    let msgs = converse(line(&ask).as_bytes());

    assert_eq!(msgs[0], hello());
    let AgentMsg::Extents { files } = &msgs[1] else {
        panic!("{msgs:?}")
    };
    assert_eq!(
        files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["a", "missing"]
    );
    assert!(files[1].extents.is_empty() && files[1].error.is_none());
}
