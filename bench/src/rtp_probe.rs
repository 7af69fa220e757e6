//! The latency probe's RTP side: the socket SIPp's probe call names in its SDP. The
//! server's first packet (its 20 ms clock starts once the agent is connected) tells where
//! to send; then one PCMU packet every 20 ms, each payload led by its index, with the
//! moment it left noted for the agent (`echo_agent::Probe`).

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::UdpSocket;

use crate::echo_agent::{FRAME_BYTES, Probe};

/// Sends `packets` packets once the server's first one arrived; the number sent.
pub async fn run(socket: UdpSocket, probe: &Probe, packets: u32) -> anyhow::Result<u32> {
    let mut buf = [0u8; 2048];
    let (_, server) = tokio::time::timeout(Duration::from_secs(20), socket.recv_from(&mut buf))
        .await
        .context("no RTP from the server within 20 s")??;
    let ssrc: u32 = 0x5EED_0001;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for index in 0..packets {
        ticker.tick().await;
        let mut packet = Vec::with_capacity(12 + FRAME_BYTES);
        packet.extend_from_slice(&[0x80, 0x00]);
        packet.extend_from_slice(&(index as u16).to_be_bytes());
        packet.extend_from_slice(&(index * FRAME_BYTES as u32).to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&index.to_be_bytes());
        packet.resize(12 + FRAME_BYTES, 0xFF);
        probe
            .sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(index, Instant::now());
        socket.send_to(&packet, server).await?;
        // Drain what the server sends back (its silence and our echo), unread otherwise.
        while socket.try_recv_from(&mut buf).is_ok() {}
    }
    Ok(packets)
}
