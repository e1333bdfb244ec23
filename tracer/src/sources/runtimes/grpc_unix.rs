//! A unary gRPC client over a unix socket, for runtime APIs whose messages
//! are written by hand with prost (CRI, containerd): no codegen, and only
//! the fields ig reads.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
}

impl Client {
    pub async fn connect(socket: &Path) -> Result<Self, tonic::transport::Error> {
        let path: PathBuf = socket.to_path_buf();
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel =
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
                    }
                }))
                .await?;
        Ok(Self { grpc: tonic::client::Grpc::new(channel) })
    }

    /// Calls `method` ("/package.Service/Method") with `metadata` headers.
    pub async fn call<Req, Resp>(
        &mut self,
        method: &str,
        metadata: &[(&'static str, &str)],
        req: Req,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path =
            http::uri::PathAndQuery::try_from(method).map_err(|e| tonic::Status::internal(e.to_string()))?;
        let mut request = tonic::Request::new(req);
        for (key, value) in metadata {
            let value =
                value.parse().map_err(|_| tonic::Status::invalid_argument(format!("bad {key} header")))?;
            request.metadata_mut().insert(*key, value);
        }
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        Ok(self.grpc.unary(request, path, codec).await?.into_inner())
    }
}
