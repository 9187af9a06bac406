//! `ModelRegistryService`: UNIMPLEMENTED until the store and the model language are
//! wired in (issue "Models as data").

use probserve_proto::v1::model_registry_service_server::ModelRegistryService;
use probserve_proto::v1::*;
use tonic::{Request, Response, Status};

use super::status::not_yet;

const CAPABILITY: &str = "models as data (the model language, registry and Infer end to end)";

/// The ModelRegistryService handler.
#[derive(Debug, Default)]
pub struct Registry;

#[tonic::async_trait]
impl ModelRegistryService for Registry {
    async fn register_model(
        &self,
        _: Request<RegisterModelRequest>,
    ) -> Result<Response<RegisterModelResponse>, Status> {
        Err(not_yet("RegisterModel", CAPABILITY))
    }
    async fn validate_model(
        &self,
        _: Request<ValidateModelRequest>,
    ) -> Result<Response<ValidateModelResponse>, Status> {
        Err(not_yet("ValidateModel", CAPABILITY))
    }
    async fn get_model(
        &self,
        _: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        Err(not_yet("GetModel", CAPABILITY))
    }
    async fn list_models(
        &self,
        _: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        Err(not_yet("ListModels", CAPABILITY))
    }
    async fn list_model_versions(
        &self,
        _: Request<ListModelVersionsRequest>,
    ) -> Result<Response<ListModelVersionsResponse>, Status> {
        Err(not_yet("ListModelVersions", CAPABILITY))
    }
    async fn archive_model(
        &self,
        _: Request<ArchiveModelRequest>,
    ) -> Result<Response<ArchiveModelResponse>, Status> {
        Err(not_yet("ArchiveModel", CAPABILITY))
    }
    async fn set_version_label(
        &self,
        _: Request<SetVersionLabelRequest>,
    ) -> Result<Response<SetVersionLabelResponse>, Status> {
        Err(not_yet("SetVersionLabel", CAPABILITY))
    }
}
