//! Head sampling per OTEL_TRACES_SAMPLER. The decision is made by the host at
//! span start (it must not cross the boundary per span); the core reduces the
//! configured sampler to two parameters the host applies in a few lines.

use serde::Serialize;

use crate::env::Env;

/// What the host applies: a root span is sampled when
/// `(low 64 bits of trace id) >> 1 < root_bound`; with `parent_based`, a child
/// follows its parent's sampled flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SamplerPlan {
    pub parent_based: bool,
    #[serde(serialize_with = "crate::json::u64_as_string")]
    pub root_bound: u64,
}

/// Every root is sampled: no 63-bit value reaches 2^63.
const ALL: u64 = 1 << 63;

impl Default for SamplerPlan {
    fn default() -> Self {
        Self { parent_based: true, root_bound: ALL }
    }
}

impl SamplerPlan {
    pub fn ratio_bound(ratio: f64) -> u64 {
        (ratio.clamp(0.0, 1.0) * ALL as f64) as u64
    }

    /// From a sampler name and its argument (OTEL_TRACES_SAMPLER and _ARG, or
    /// options); unknown names and bad ratios warn and fall back to defaults.
    pub fn from_setting(name: Option<&str>, arg: Option<&str>, warnings: &mut Vec<String>) -> Self {
        let name = name.map(str::to_ascii_lowercase);
        let mut ratio = || -> u64 {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => ALL,
                Some(a) => match a.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Self::ratio_bound(r),
                    _ => {
                        warnings.push(format!("sampler argument {a:?} is not a ratio between 0 and 1; using 1.0."));
                        ALL
                    }
                },
            }
        };
        match name.as_deref() {
            None | Some("parentbased_always_on") => Self::default(),
            Some("always_on") => Self { parent_based: false, root_bound: ALL },
            Some("always_off") => Self { parent_based: false, root_bound: 0 },
            Some("parentbased_always_off") => Self { parent_based: true, root_bound: 0 },
            Some("traceidratio") => Self { parent_based: false, root_bound: ratio() },
            Some("parentbased_traceidratio") => Self { parent_based: true, root_bound: ratio() },
            Some(other) => {
                warnings.push(format!(
                    "sampler {other:?} is not supported (use always_on, always_off, traceidratio or their parentbased_ forms); using parentbased_always_on."
                ));
                Self::default()
            }
        }
    }

    pub fn from_env(env: &mut Env, option: Option<&str>, option_arg: Option<&str>) -> Self {
        let name = option.or(env.get("OTEL_TRACES_SAMPLER"));
        let arg = option_arg.or(env.get("OTEL_TRACES_SAMPLER_ARG"));
        let mut warnings = Vec::new();
        let plan = Self::from_setting(name, arg, &mut warnings);
        warnings.into_iter().for_each(|w| env.warn(w));
        plan
    }

    /// The host's rule, written once here for the native host and the tests.
    pub fn samples_root(&self, trace_id: &[u8; 16]) -> bool {
        let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
        (low >> 1) < self.root_bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, arg: Option<&str>) -> (SamplerPlan, usize) {
        let mut w = Vec::new();
        (SamplerPlan::from_setting(Some(name), arg, &mut w), w.len())
    }

    #[test]
    fn names_map_to_plans() {
        assert_eq!(plan("always_on", None).0, SamplerPlan { parent_based: false, root_bound: ALL });
        assert_eq!(plan("ALWAYS_OFF", None).0.root_bound, 0);
        assert_eq!(
            plan("parentbased_traceidratio", Some("0.25")).0,
            SamplerPlan { parent_based: true, root_bound: ALL / 4 }
        );
        assert_eq!(plan("traceidratio", Some("2")), (SamplerPlan { parent_based: false, root_bound: ALL }, 1));
        assert_eq!(plan("jaeger_remote", None), (SamplerPlan::default(), 1));
    }

    #[test]
    fn ratio_samples_about_that_share() {
        let p = plan("traceidratio", Some("0.1")).0;
        let mut state = 7u64;
        let sampled = (0..20_000)
            .filter(|_| {
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&crate::ids::splitmix64(&mut state).to_be_bytes());
                p.samples_root(&id)
            })
            .count();
        assert!((1700..2300).contains(&sampled), "{sampled}");
        assert!(plan("always_on", None).0.samples_root(&[0xff; 16]));
        assert!(!plan("always_off", None).0.samples_root(&[0; 16]));
    }
}
