//! Token prices: the table shipped in `prices.toml`, with the user's
//! `genai_prices` entries replacing or adding models. A model the table does
//! not know has no cost; nothing is guessed from similar names.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use super::Usage;

const SHIPPED: &str = include_str!("prices.toml");

/// US dollars per million tokens.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Cached input read; without it, cached tokens cost `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input written to the cache; without it, those tokens cost `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Other ids the provider answers with for the same prices (dated snapshots).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub source: Option<String>,
}

impl Price {
    fn valid(&self) -> bool {
        [Some(self.input), Some(self.output), self.cache_read, self.cache_write]
            .into_iter()
            .flatten()
            .all(|p| p.is_finite() && p >= 0.0)
    }

    /// The cost of `usage` in US dollars. Input tokens include cache reads
    /// and writes, which are charged at their own prices instead.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let read = usage.cache_read_tokens.unwrap_or(0);
        let write = usage.cache_write_tokens.unwrap_or(0);
        let fresh = usage.input_tokens.unwrap_or(0).saturating_sub(read.saturating_add(write));
        let per_million = fresh as f64 * self.input
            + read as f64 * self.cache_read.unwrap_or(self.input)
            + write as f64 * self.cache_write.unwrap_or(self.input)
            + usage.output_tokens.unwrap_or(0) as f64 * self.output;
        per_million / 1e6
    }
}

type Table = BTreeMap<String, BTreeMap<String, Price>>;

/// The user's entries, checked at configuration; the table they are laid
/// over is built at the first lookup, so a pipeline that prices nothing never
/// reads the shipped file.
#[derive(Debug)]
pub struct Prices {
    user: Table,
    merged: OnceLock<Merged>,
}

#[derive(Debug, Default)]
struct Merged {
    entries: Vec<Price>,
    /// (provider, model id or alias) → entry.
    index: HashMap<(String, String), usize>,
}

/// The shipped table, parsed once per process.
fn shipped() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| toml::from_str(SHIPPED).expect("the shipped price table parses (tested)"))
}

impl Prices {
    /// The shipped table with `user` (the `genai_prices` option: provider →
    /// model → price) laid over it: a user entry replaces the shipped entry of
    /// the same model, aliases included.
    pub fn new(user: Option<&serde_json::Value>) -> Result<Prices, String> {
        let user: Table = match user {
            None => Table::new(),
            Some(user) => serde_json::from_value(user.clone()).map_err(|e| {
                format!("The option genai_prices is not valid ({e}); give provider → model → {{input, output, cache_read?, cache_write?, aliases?}} in US dollars per million tokens.")
            })?,
        };
        for (provider, models) in &user {
            for (model, price) in models {
                if !price.valid() {
                    return Err(format!("The genai_prices entry {provider}/{model} has a negative or non-finite price; prices are US dollars per million tokens."));
                }
            }
        }
        Ok(Prices { user, merged: OnceLock::new() })
    }

    fn merged(&self) -> &Merged {
        self.merged.get_or_init(|| {
            let mut m = Merged::default();
            m.add(shipped());
            for (provider, models) in &self.user {
                for model in models.keys() {
                    if let Some(&old) = m.index.get(&(provider.clone(), model.clone())) {
                        m.index.retain(|_, i| *i != old);
                    }
                }
            }
            m.add(&self.user);
            m
        })
    }

    /// The price of the first of `models` the table knows for `provider`.
    pub fn find<'m>(&self, provider: &str, models: impl IntoIterator<Item = &'m str>) -> Option<&Price> {
        let merged = self.merged();
        models
            .into_iter()
            .filter(|m| !m.is_empty())
            .find_map(|m| merged.index.get(&(provider.to_owned(), m.to_owned())))
            .map(|&i| &merged.entries[i])
    }
}

impl Merged {
    fn add(&mut self, table: &Table) {
        for (provider, models) in table {
            for (model, price) in models {
                let at = self.entries.len();
                for id in std::iter::once(model).chain(&price.aliases) {
                    self.index.insert((provider.clone(), id.clone()), at);
                }
                self.entries.push(price.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, read: u64, write: u64) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_read_tokens: Some(read),
            cache_write_tokens: Some(write),
            reasoning_tokens: None,
        }
    }

    #[test]
    fn the_shipped_table_parses_and_every_entry_names_its_source() {
        let table: Table = toml::from_str(SHIPPED).unwrap();
        let entries: Vec<_> = table.values().flat_map(|m| m.iter()).collect();
        assert!(entries.len() >= 10, "only {} priced models", entries.len());
        for (model, price) in entries {
            assert!(price.valid(), "{model}");
            assert!(price.source.as_deref().is_some_and(|s| s.starts_with("https://")), "{model} has no source");
        }
    }

    #[test]
    fn cached_tokens_are_charged_at_their_own_price() {
        let p = Price {
            input: 3.0,
            output: 15.0,
            cache_read: Some(0.3),
            cache_write: Some(3.75),
            aliases: vec![],
            source: None,
        };
        // 1000 fresh input, 3000 read, 1000 written, 800 output.
        let cost = p.cost(&usage(5000, 800, 3000, 1000));
        let want = (1000.0 * 3.0 + 3000.0 * 0.3 + 1000.0 * 3.75 + 800.0 * 15.0) / 1e6;
        assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
        let no_cache_price = Price { cache_read: None, cache_write: None, ..p };
        assert!((no_cache_price.cost(&usage(5000, 0, 3000, 0)) - 5000.0 * 3.0 / 1e6).abs() < 1e-12);
    }

    #[test]
    fn user_entries_replace_shipped_ones_with_their_aliases() {
        let shipped: Table = toml::from_str(SHIPPED).unwrap();
        let (provider, models) = shipped.iter().find(|(_, m)| m.values().any(|p| !p.aliases.is_empty())).unwrap();
        let (model, price) = models.iter().find(|(_, p)| !p.aliases.is_empty()).unwrap();
        let alias = &price.aliases[0];
        let user = serde_json::json!({provider: {model: {"input": 1.0, "output": 2.0}}, "acme": {"m": {"input": 0.5, "output": 0.5}}});
        let prices = Prices::new(Some(&user)).unwrap();
        assert_eq!(prices.find(provider, [model.as_str()]).unwrap().input, 1.0);
        assert!(prices.find(provider, [alias.as_str()]).is_none(), "the replaced entry's alias {alias} still priced");
        assert_eq!(prices.find("acme", ["unknown", "m"]).unwrap().output, 0.5);
        assert!(prices.find("acme", ["ft:m"]).is_none());
        let bad = serde_json::json!({"acme": {"m": {"input": -1.0, "output": 0.0}}});
        assert!(Prices::new(Some(&bad)).unwrap_err().contains("acme/m"));
        let malformed = serde_json::json!({"acme": {"m": {"inputs": 1.0}}});
        assert!(Prices::new(Some(&malformed)).unwrap_err().contains("genai_prices"));
    }
}
