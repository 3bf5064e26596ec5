//! The baseline: the least a tonic server can do with the same traffic.

use std::net::SocketAddr;
use tonic::{Request, Response, Status, Streaming};

/// Generated from `proto/raw.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("fogbench.v1");
}

use pb::raw_service_server::{RawService, RawServiceServer};

struct Raw {
    fanout: tokio::sync::broadcast::Sender<pb::Blob>,
}

type BlobStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::Blob, Status>> + Send>>;

#[tonic::async_trait]
impl RawService for Raw {
    type SubscribeStream = BlobStream;

    async fn subscribe(&self, _: Request<pb::Blob>) -> Result<Response<BlobStream>, Status> {
        use futures::StreamExt;
        // A subscriber that falls behind skips what it missed, as the coordinator's watchers do.
        let rx = tokio_stream::wrappers::BroadcastStream::new(self.fanout.subscribe());
        Ok(Response::new(Box::pin(rx.filter_map(|m| async move { m.ok().map(Ok) }))))
    }

    async fn publish(&self, req: Request<pb::Blob>) -> Result<Response<pb::Count>, Status> {
        let n = self.fanout.send(req.into_inner()).unwrap_or(0);
        Ok(Response::new(pb::Count { messages: n as u64 }))
    }

    async fn echo(&self, req: Request<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        Ok(Response::new(req.into_inner()))
    }

    async fn ingest(&self, req: Request<Streaming<pb::Blob>>) -> Result<Response<pb::Count>, Status> {
        let mut stream = req.into_inner();
        let mut messages = 0;
        while let Some(m) = stream.message().await? {
            std::hint::black_box(m);
            messages += 1;
        }
        Ok(Response::new(pb::Count { messages }))
    }
}

/// Serves until killed, with the coordinator's HTTP/2 settings.
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .max_concurrent_streams(Some(16_384))
        .tcp_nodelay(true)
        .add_service(RawServiceServer::new(Raw { fanout: tokio::sync::broadcast::channel(8192).0 }))
        .serve(listen)
        .await?;
    Ok(())
}
