//! `ModelRegistryService`: register (compile + validate + store, idempotent),
//! validate, get, list, archive and label model versions.

use std::sync::Arc;

use probserve_proto::v1::model_registry_service_server::ModelRegistryService;
use probserve_proto::v1::*;
use probserve_store::{
    ModelSummary as StoreSummary, ModelVersion as StoreVersion, NewModelVersion,
};
use tonic::{Request, Response, Status};

use super::status::{from_catalog, invalid_argument};
use crate::catalog::{Catalog, unix_millis};

/// The ModelRegistryService handler.
#[derive(Debug)]
pub struct Registry {
    catalog: Arc<Catalog>,
}

impl Registry {
    /// A handler over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }
}

/// The proto view of a data type.
pub fn data_type(t: &probserve_lang::DataType) -> DataType {
    use probserve_lang::ElemType;
    match (t.elem, t.is_vector()) {
        (ElemType::Real, false) => DataType::Real,
        (ElemType::Int, false) => DataType::Int,
        (ElemType::Bool, false) => DataType::Bool,
        (ElemType::Real, true) => DataType::RealVector,
        (ElemType::Int, true) => DataType::IntVector,
        (ElemType::Bool, true) => DataType::BoolVector,
    }
}

fn interface(info: &probserve_lang::ModelInfo) -> ModelInterface {
    ModelInterface {
        source_name: info.name.clone(),
        data: info
            .data
            .iter()
            .map(|d| DataDeclaration {
                name: d.name.clone(),
                r#type: data_type(&d.ty) as i32,
            })
            .collect(),
        latents: info.latents.iter().map(|l| l.name.clone()).collect(),
        outputs: info.outputs.clone(),
    }
}

fn timestamp(millis: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (millis / 1000) as i64,
        nanos: ((millis % 1000) * 1_000_000) as i32,
    }
}

/// The proto view of a stored version (`labels` pointing at it, `interface` if known).
fn to_proto(
    v: &StoreVersion,
    labels: Vec<String>,
    info: Option<&probserve_lang::ModelInfo>,
    with_source: bool,
) -> ModelVersion {
    ModelVersion {
        name: v.name.clone(),
        version: v.version.clone(),
        source: if with_source {
            v.source.clone()
        } else {
            String::new()
        },
        description: v.description.clone(),
        metadata: v.labels.clone().into_iter().collect(),
        content_hash: v.content_hash.clone(),
        created_at: Some(timestamp(v.created_at_millis)),
        archived: v.archived,
        labels,
        interface: info.map(interface),
    }
}

fn labels_for(summary: Option<&StoreSummary>, version: &str) -> Vec<String> {
    summary
        .map(|s| {
            s.labels
                .iter()
                .filter(|(_, v)| v.as_str() == version)
                .map(|(l, _)| l.clone())
                .collect()
        })
        .unwrap_or_default()
}

impl Registry {
    async fn labels(&self, name: &str, version: &str) -> Result<Vec<String>, Status> {
        let n = name.to_owned();
        let summary = self
            .catalog
            .with_store(move |s| s.model_summary(&n))
            .await
            .map_err(from_catalog)?;
        Ok(labels_for(summary.as_ref(), version))
    }
}

fn selector<'a>(version: &'a str, label: &'a str) -> Result<Option<&'a str>, Status> {
    match (version.is_empty(), label.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(version)),
        (true, false) => Ok(Some(label)),
        (false, false) => Err(invalid_argument(
            "give a version or a label, not both",
            vec![("label".into(), "must be empty when version is set".into())],
        )),
    }
}

/// The call's deadline from its `grpc-timeout` (already clamped to the server's
/// maximum by the deadline layer); `None` when it sent none.
fn call_deadline<T>(req: &Request<T>) -> Option<std::time::Instant> {
    let timeout = req
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| probserve_reliability::deadline::parse_grpc_timeout(v.as_bytes()))?;
    std::time::Instant::now().checked_add(timeout)
}

fn require(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(invalid_argument(
            format!("{field} is required"),
            vec![(field.into(), "must not be empty".into())],
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl ModelRegistryService for Registry {
    async fn register_model(
        &self,
        req: Request<RegisterModelRequest>,
    ) -> Result<Response<RegisterModelResponse>, Status> {
        let deadline = call_deadline(&req);
        let r = req.into_inner();
        require("name", &r.name)?;
        require("version", &r.version)?;
        require("source", &r.source)?;
        let rec = NewModelVersion {
            name: r.name,
            version: r.version,
            source: r.source,
            description: r.description,
            labels: r.metadata.into_iter().collect(),
            created_at_millis: unix_millis(),
        };
        let (outcome, compiled) = self
            .catalog
            .register_by(rec, deadline)
            .await
            .map_err(from_catalog)?;
        let created = outcome.is_created();
        let v = outcome.into_version();
        tracing::info!(model = %v.name, version = %v.version, created, hash = %v.content_hash, "model registered");
        let labels = self.labels(&v.name, &v.version).await?;
        Ok(Response::new(RegisterModelResponse {
            model: Some(to_proto(&v, labels, Some(compiled.info()), true)),
            created,
        }))
    }

    async fn validate_model(
        &self,
        req: Request<ValidateModelRequest>,
    ) -> Result<Response<ValidateModelResponse>, Status> {
        let deadline = call_deadline(&req);
        let source = req.into_inner().source;
        if source.len() > probserve_store::validate::MAX_SOURCE_BYTES {
            return Err(invalid_argument(
                "source too large",
                vec![("source".into(), "larger than 4 MiB".into())],
            ));
        }
        let result = self
            .catalog
            .compile_checked(source, deadline)
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(match result {
            Ok(model) => ValidateModelResponse {
                valid: true,
                diagnostics: Vec::new(),
                interface: Some(interface(model.info())),
            },
            Err(diags) => ValidateModelResponse {
                valid: false,
                diagnostics: diags
                    .iter()
                    .map(|d| Diagnostic {
                        line: u32::try_from(d.line).unwrap_or(u32::MAX),
                        column: u32::try_from(d.column).unwrap_or(u32::MAX),
                        message: d.message.clone(),
                        rendered: d.to_string(),
                    })
                    .collect(),
                interface: None,
            },
        }))
    }

    async fn get_model(
        &self,
        req: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        let r = req.into_inner();
        require("name", &r.name)?;
        let sel = selector(&r.version, &r.label)?;
        let resolved = self
            .catalog
            .resolve(&r.name, sel)
            .await
            .map_err(from_catalog)?;
        let v = &resolved.version;
        let labels = self.labels(&v.name, &v.version).await?;
        Ok(Response::new(GetModelResponse {
            model: Some(to_proto(v, labels, Some(resolved.compiled.info()), true)),
        }))
    }

    async fn list_models(
        &self,
        req: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let r = req.into_inner();
        let page = self
            .catalog
            .with_store(move |s| s.list_models(r.page_size, &r.page_token))
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(ListModelsResponse {
            models: page
                .items
                .into_iter()
                .map(|m| ModelSummary {
                    name: m.name,
                    version_count: u32::try_from(m.version_count).unwrap_or(u32::MAX),
                    latest_version: m.latest_version.unwrap_or_default(),
                    labels: m.labels.into_iter().collect(),
                })
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn list_model_versions(
        &self,
        req: Request<ListModelVersionsRequest>,
    ) -> Result<Response<ListModelVersionsResponse>, Status> {
        let r = req.into_inner();
        require("name", &r.name)?;
        let (page, summary) = self
            .catalog
            .with_store(move |s| {
                Ok((
                    s.list_versions(&r.name, r.page_size, &r.page_token)?,
                    s.model_summary(&r.name)?,
                ))
            })
            .await
            .map_err(from_catalog)?;
        Ok(Response::new(ListModelVersionsResponse {
            versions: page
                .items
                .iter()
                .map(|v| to_proto(v, labels_for(summary.as_ref(), &v.version), None, false))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn archive_model(
        &self,
        req: Request<ArchiveModelRequest>,
    ) -> Result<Response<ArchiveModelResponse>, Status> {
        let r = req.into_inner();
        require("name", &r.name)?;
        require("version", &r.version)?;
        let v = self
            .catalog
            .with_store(move |s| s.archive_version(&r.name, &r.version))
            .await
            .map_err(from_catalog)?;
        tracing::info!(model = %v.name, version = %v.version, "model version archived");
        Ok(Response::new(ArchiveModelResponse {
            model: Some(to_proto(&v, Vec::new(), None, false)),
        }))
    }

    async fn set_version_label(
        &self,
        req: Request<SetVersionLabelRequest>,
    ) -> Result<Response<SetVersionLabelResponse>, Status> {
        let r = req.into_inner();
        require("name", &r.name)?;
        require("label", &r.label)?;
        require("version", &r.version)?;
        let (previous, v, summary) = self
            .catalog
            .with_store(move |s| {
                let previous = s.set_label(&r.name, &r.label, &r.version)?;
                let v = s.resolve(&r.name, Some(&r.label))?;
                let summary = s.model_summary(&r.name)?;
                Ok((previous, v, summary))
            })
            .await
            .map_err(from_catalog)?;
        tracing::info!(model = %v.name, version = %v.version, previous = ?previous, "label moved");
        let labels = labels_for(summary.as_ref(), &v.version);
        Ok(Response::new(SetVersionLabelResponse {
            previous_version: previous.unwrap_or_default(),
            model: Some(to_proto(&v, labels, None, false)),
        }))
    }
}
