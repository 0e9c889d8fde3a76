//! Index templates, as the Logstash output's `manage_template`: with `template` (a
//! JSON file) the output installs it as `template_name` (default `logstash`) before
//! its first bulk request, through the composable `_index_template` API (`template_api
//! => auto` or `composable`) or the legacy `_template` API (`legacy`). Without
//! `template_overwrite => true` an existing template of that name is left as it is.
//!
//! Not done here: Logstash's own bundled templates (installed when no `template` is
//! given; they match only its default `logstash-*` / `ecs-logstash-*` names). Without
//! a `template` file no template is installed and Elasticsearch maps dynamically.

use std::sync::atomic::Ordering;

use crate::pipeline::settings::{PluginError, Settings};

/// A template to install, read at load time so a bad file stops the pipeline there.
pub struct Template {
    pub name: String,
    /// `_index_template/<name>` or `_template/<name>`.
    pub path: String,
    pub body: bytes::Bytes,
    pub overwrite: bool,
}

/// The template settings; None when nothing is to be installed.
pub fn read(s: &mut Settings) -> Result<Option<Template>, PluginError> {
    let manage = s.bool("manage_template")?.unwrap_or(true);
    let file = s.string("template")?;
    let name = s
        .string("template_name")?
        .unwrap_or_else(|| "logstash".into());
    let overwrite = s.bool("template_overwrite")?.unwrap_or(false);
    let api = s.string("template_api")?;
    let legacy = match api.as_deref() {
        None | Some("auto") | Some("composable") => false,
        Some("legacy") => true,
        Some(other) => {
            return Err(s.error(format!(
                "template_api must be auto, composable or legacy, not \"{other}\""
            )))
        }
    };
    let Some(file) = file.filter(|_| manage) else {
        return Ok(None);
    };
    let text =
        std::fs::read(&file).map_err(|e| s.error(format!("cannot read template {file}: {e}")))?;
    serde_json::from_slice::<serde_json::Value>(&text)
        .map_err(|e| s.error(format!("template {file} is not JSON: {e}")))?;
    let api = if legacy {
        "_template"
    } else {
        "_index_template"
    };
    Ok(Some(Template {
        path: format!("{api}/{name}"),
        name,
        body: text.into(),
        overwrite,
    }))
}

impl super::Elasticsearch {
    /// Installs the `template`, once, before the first bulk request. Connection errors
    /// are tried again before the next request; an answer from Elasticsearch (even a
    /// refusal, which is logged) settles it, as in Logstash, which logs a template it
    /// could not install and goes on indexing.
    pub(super) async fn install_template(&self) {
        let Some(t) = &self.template else { return };
        if self.template_done.load(Ordering::Relaxed) {
            return;
        }
        for host in &self.hosts {
            if !t.overwrite {
                match self
                    .request(reqwest::Method::HEAD, host, &t.path)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        tracing::info!(output = %self.id, template = %t.name, "index template exists; left as it is");
                        self.template_done.store(true, Ordering::Relaxed);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(output = %self.id, host = %host, error = %e, "cannot check the index template");
                        continue;
                    }
                }
            }
            let put = self
                .request(reqwest::Method::PUT, host, &t.path)
                .header("Content-Type", "application/json")
                .body(t.body.clone());
            match put.send().await {
                Ok(r) => {
                    let status = r.status();
                    if status.is_success() {
                        tracing::info!(output = %self.id, template = %t.name, "index template installed");
                    } else {
                        let text = r.text().await.unwrap_or_default();
                        tracing::error!(output = %self.id, template = %t.name, status = status.as_u16(), answer = %text, "Elasticsearch refused the index template");
                    }
                    self.template_done.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::warn!(output = %self.id, host = %host, error = %e, "cannot install the index template")
                }
            }
        }
    }
}
