//! Declarative provisioning of DNC lists and their single consolidated rule, idempotent, with a report of rule
//! fragmentation and priority inversion (the source document's edge case 3).

use serde::{Deserialize, Serialize};

use crate::adapters::cxone::{
    create_list_if_absent, create_rule_if_absent, DncApi, DncRule, NewList, RuleAction, RuleScope,
};
use crate::steps::PipelineError;

/// One list to have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSpec {
    /// The list's name, unique in the tenant: what runs are told (`--list`).
    pub name: String,
    /// Free text shown beside the name (may be empty).
    #[serde(default)]
    pub description: String,
    /// `MANUAL` (the default) or `SYSTEM`.
    #[serde(rename = "type", default = "manual")]
    pub kind: String,
    /// The list's default expiration (RFC 3339; default `2099-12-31T23:59:59Z`: in effect never).
    #[serde(default = "far_future")]
    pub default_expiration_date: String,
}

fn manual() -> String {
    "MANUAL".into()
}

fn far_future() -> String {
    "2099-12-31T23:59:59Z".into()
}

/// The single rule binding the lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    /// Its name, unique in the tenant (what the provisioning file and the runs refer to).
    pub name: String,
    /// Free text shown beside the name (may be empty).
    #[serde(default)]
    pub description: String,
    /// `BOTH` (recommended), `OUTBOUND` or `INBOUND`.
    #[serde(default = "both")]
    pub scope: RuleScope,
    /// Lower is evaluated first (the source recommends 5).
    #[serde(default = "five")]
    pub priority: i64,
    /// List names in order: strict suppression first, exception lists last.
    pub lists: Vec<String>,
}

fn both() -> RuleScope {
    RuleScope::Both
}

fn five() -> i64 {
    5
}

/// A registry (the National DNC Registry, a state list too big for CXone): a suppression index in the bucket that
/// `check` consults, never a CXone list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// Its name (`registry/<name>/`, `incoming-registry/<name>/`, `CheckRegistries`).
    pub name: String,
    /// Free text shown beside the name (may be empty).
    #[serde(default)]
    pub description: String,
    /// Days after its as-of date it goes stale (31: the safe harbor's limit).
    #[serde(default = "max_age")]
    pub max_age_days: u32,
}

fn max_age() -> u32 {
    crate::registry::DEFAULT_MAX_AGE_DAYS
}

/// The provisioning file (`dncctl provision FILE`): what the tenant should have, created where missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionSpec {
    /// The DNC lists (the Admin API's groups) to have in CXone.
    pub lists: Vec<ListSpec>,
    /// The one BLOCK rule that makes the lists suppress (v2; the Admin API binds groups through `scrubbed_skills`).
    pub rule: RuleSpec,
    /// Registries (suppression indexes, not in CXone).
    #[serde(default)]
    pub registries: Vec<RegistrySpec>,
    /// Admin API: the outbound skills (names or ids) that scrub the rule's groups, the dialect's binding in place of
    /// the rule (none: every active outbound skill). Ignored by v2.
    #[serde(default, deserialize_with = "skill_ids")]
    pub scrubbed_skills: Vec<String>,
}

/// Skills named or numbered: a skill id is a number in every published shape, so a file may write `11002` as well
/// as `"11002"` or `"Outbound Sales"`.
fn skill_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(d)?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) if n.is_u64() => Ok(n.to_string()),
            _ => Err(serde::de::Error::custom(format!(
                "scrubbedSkills[{i}]: a skill name or a numeric skill id"
            ))),
        })
        .collect()
}

impl ProvisionSpec {
    /// What makes the file contradict itself: a registry that is also a CXone list or in the rule (a registry never
    /// goes to CXone: the national one alone is 258 M numbers, a CXone environment holds 1 M records), or a registry
    /// name the index cannot use.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.registries {
            if let Err(e) = crate::registry::check_name(&r.name) {
                out.push(e.to_string());
            }
            let lowered = r.name.to_ascii_lowercase();
            for l in &self.lists {
                if l.name.to_ascii_lowercase() == lowered {
                    out.push(format!(
                        "{} is declared both a registry and a CXone list: a registry is a suppression index that check consults, it never goes to CXone",
                        l.name
                    ));
                }
            }
            if self
                .rule
                .lists
                .iter()
                .any(|l| l.to_ascii_lowercase() == lowered)
            {
                out.push(format!(
                    "the rule names {}, which is declared a registry: registries are not CXone lists",
                    r.name
                ));
            }
        }
        out
    }
}

/// What provisioning did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionReport {
    /// Changes made (or confirmed unchanged).
    pub actions: Vec<String>,
    /// Fragmentation and priority-inversion findings.
    pub findings: Vec<String>,
    /// The environment's records against CXone's cap.
    #[serde(default)]
    pub headroom: Option<String>,
}

/// Create or update the lists and the rule so the tenant matches `spec`; running it twice changes nothing.
pub async fn provision(
    api: &dyn DncApi,
    spec: &ProvisionSpec,
) -> Result<ProvisionReport, PipelineError> {
    let problems = spec.problems();
    if !problems.is_empty() {
        return Err(PipelineError::Data {
            what: "provisioning file".into(),
            reason: problems.join("; "),
        });
    }
    let mut report = ProvisionReport::default();
    for r in &spec.registries {
        report.actions.push(format!(
            "registry {}: suppression index (not in CXone), stale after {} days; imported with `dncctl registry import` or under incoming-registry/{}/, consulted by check (CheckRegistries)",
            r.name, r.max_age_days, r.name
        ));
    }
    let existing = api.lists().await?;
    let mut ids = Vec::new();
    for l in &spec.lists {
        match existing.iter().find(|e| e.name == l.name) {
            Some(e) => {
                report
                    .actions
                    .push(format!("list {}: exists ({})", l.name, e.id));
                if !e.is_active {
                    report.findings.push(format!(
                        "list {} is inactive: it suppresses nothing",
                        l.name
                    ));
                }
                ids.push((l.name.clone(), e.id.clone()));
            }
            None => {
                let created = create_list_if_absent(
                    api,
                    &NewList {
                        name: l.name.clone(),
                        description: l.description.clone(),
                        kind: l.kind.clone(),
                        default_expiration_date: l.default_expiration_date.clone(),
                        is_active: true,
                    },
                )
                .await?;
                report
                    .actions
                    .push(format!("list {}: created ({})", l.name, created.id));
                ids.push((l.name.clone(), created.id));
            }
        }
    }
    if api.dialect() == crate::adapters::cxone::Dialect::Admin {
        // No rules: each group of the rule is bound by the outbound skills that scrub it.
        report.actions.push(format!(
            "rule {}: the Admin API has no rules; its lists are bound by scrubbed outbound skills",
            spec.rule.name
        ));
        for name in &spec.rule.lists {
            let Some(list) = api.find_list(name).await? else {
                return Err(PipelineError::Data {
                    what: format!("rule {}", spec.rule.name),
                    reason: format!("names list {name}, which the file does not declare"),
                });
            };
            let done = api.bind_outbound(&list, &spec.scrubbed_skills).await?;
            if done.is_empty() {
                report.actions.push(format!(
                    "list {name}: already bound ({})",
                    api.suppression(&list).await?.detail
                ));
            }
            report.actions.extend(done);
        }
        report.headroom = Some(headroom(api).await?);
        return Ok(report);
    }
    let list_ids = spec
        .rule
        .lists
        .iter()
        .map(|name| {
            ids.iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| id.clone())
                .ok_or_else(|| PipelineError::Data {
                    what: format!("rule {}", spec.rule.name),
                    reason: format!("names list {name}, which the file does not declare"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let wanted = DncRule {
        id: String::new(),
        name: spec.rule.name.clone(),
        description: spec.rule.description.clone(),
        scope: spec.rule.scope,
        priority: spec.rule.priority,
        list_ids,
        action: RuleAction::Block,
        is_active: true,
    };
    let rules = api.rules().await?;
    match rules.iter().find(|r| r.name == wanted.name) {
        Some(r)
            if DncRule {
                id: r.id.clone(),
                ..wanted.clone()
            } == *r =>
        {
            report
                .actions
                .push(format!("rule {}: unchanged ({})", wanted.name, r.id))
        }
        Some(r) => {
            api.update_rule(
                &r.id,
                &DncRule {
                    id: r.id.clone(),
                    ..wanted.clone()
                },
            )
            .await?;
            report
                .actions
                .push(format!("rule {}: updated ({})", wanted.name, r.id));
        }
        None => {
            let created = create_rule_if_absent(api, &wanted).await?;
            report
                .actions
                .push(format!("rule {}: created ({})", wanted.name, created.id));
        }
    }
    let managed: Vec<(String, String)> = ids;
    report
        .findings
        .extend(analyze(&api.rules().await?, &managed, &wanted.name));
    report.headroom = Some(headroom(api).await?);
    Ok(report)
}

/// The environment's record count against CXone's cap, as provisioning reports it.
async fn headroom(api: &dyn DncApi) -> Result<String, PipelineError> {
    let h = api.holdings().await?;
    let cap = crate::steps::CXONE_CAPACITY;
    let uncounted = if h.uncounted.is_empty() {
        String::new()
    } else {
        format!(" (not counted: {})", h.uncounted.join(", "))
    };
    Ok(format!(
        "capacity: {} of {cap} records held ({} on DNC lists, {} on calling lists){uncounted}, headroom {}",
        h.total(),
        h.dnc_records,
        h.calling_list_records,
        cap.saturating_sub(h.total())
    ))
}

/// Fragmentation and priority inversion among `rules` for the `managed` lists (name, id).
pub fn analyze(rules: &[DncRule], managed: &[(String, String)], own_rule: &str) -> Vec<String> {
    let mut findings = Vec::new();
    let outbound = |r: &DncRule| r.scope.covers_outbound();
    for (name, id) in managed {
        let holding: Vec<&DncRule> = rules
            .iter()
            .filter(|r| r.is_active && r.list_ids.contains(id))
            .collect();
        if holding.len() > 1 {
            let names: Vec<String> = holding
                .iter()
                .map(|r| {
                    format!(
                        "{} ({}, {}, priority {})",
                        r.name, r.action, r.scope, r.priority
                    )
                })
                .collect();
            findings.push(format!(
                "fragmentation: list {name} is in {} active rules: {}",
                holding.len(),
                names.join("; ")
            ));
        }
        for r in holding
            .iter()
            .filter(|r| r.scope == RuleScope::Inbound && r.action == RuleAction::Block)
        {
            findings.push(format!(
                "list {name} is in INBOUND-only rule {}: it does not protect outbound calls",
                r.name
            ));
        }
        let Some(block) = holding
            .iter()
            .filter(|r| r.action == RuleAction::Block && outbound(r))
            .min_by_key(|r| r.priority)
        else {
            findings.push(format!(
                "list {name} is in no active BLOCK rule covering OUTBOUND: it suppresses nothing"
            ));
            continue;
        };
        // An ALLOW rule evaluated first can let a listed number through (priority inversion).
        for allow in rules.iter().filter(|r| {
            r.is_active
                && r.action == RuleAction::Allow
                && outbound(r)
                && r.priority <= block.priority
        }) {
            findings.push(format!(
                "priority inversion: ALLOW rule {} (priority {}) is evaluated before {} (priority {}) for outbound calls; \
                 move exception lists to the end of {} and remove the separate rule",
                allow.name, allow.priority, block.name, block.priority, own_rule
            ));
        }
    }
    findings.sort();
    findings.dedup();
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbed_skills_may_be_numbers_or_names() {
        let spec: ProvisionSpec = serde_json::from_str(
            r#"{"lists": [{"name": "L"}], "rule": {"name": "R", "lists": ["L"]},
                "scrubbedSkills": [11002, "11003", "Outbound Sales"]}"#,
        )
        .unwrap();
        assert_eq!(spec.scrubbed_skills, ["11002", "11003", "Outbound Sales"]);
        let err = serde_json::from_str::<ProvisionSpec>(
            r#"{"lists": [{"name": "L"}], "rule": {"name": "R", "lists": ["L"]},
                "scrubbedSkills": ["ok", -4]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scrubbedSkills[1]"), "{err}");
    }
}
