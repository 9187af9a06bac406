//! Provoking the error table's DATA_LOSS row: a WatchRollout stream whose client
//! reads nothing falls behind while changes keep coming.

use std::net::SocketAddr;
use std::time::Duration;

use probserve_proto::v1::experiment_service_client::ExperimentServiceClient;
use probserve_proto::v1::{CommandContext, SetKillSwitchRequest, WatchRolloutRequest};
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

/// Changes made: twice what the server buffers per watcher before it drops them
/// (its broadcast channel holds 256), since the server may already have taken a
/// batch off the channel into a send buffer that waits for the window.
const CHANGES: usize = 512;

/// Watches rollout `id` over a connection with a 1 KiB stream window (the server
/// can send only a few messages before the client reads), makes [`CHANGES`]
/// changes with `ch` (kill switch toggles, ending where it started: off), then
/// reads the stream until it fails; returns that status.
pub async fn watcher_falls_behind(addr: SocketAddr, ch: &Channel, id: &str) -> Status {
    let slow = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .initial_stream_window_size(1024u32)
        .connect()
        .await
        .expect("connect");
    let mut stream = ExperimentServiceClient::new(slow)
        .watch_rollout(WatchRolloutRequest { id: id.into() })
        .await
        .expect("watch")
        .into_inner();
    let mut exp = ExperimentServiceClient::new(ch.clone());
    for i in 0..CHANGES {
        exp.set_kill_switch(SetKillSwitchRequest {
            context: Some(CommandContext {
                id: id.into(),
                actor: "ana".into(),
                reason: "error table".into(),
                expected_revision: 0,
            }),
            enabled: i % 2 == 0,
        })
        .await
        .expect("kill switch");
    }
    for _ in 0..=CHANGES {
        match tokio::time::timeout(Duration::from_secs(30), stream.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("the watch ended without an error"),
            Ok(Err(status)) => return status,
            Err(_) => panic!("the watch stalled"),
        }
    }
    panic!("read every change: the watcher never fell behind")
}
