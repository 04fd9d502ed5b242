//! Model names to targets: the `models:` table, the `provider/model` shorthand, and the choice of
//! one target by weight.
//!
//! Resolution is a hash lookup on the hot path; the shorthand builds its one-target route on
//! demand because its model names are open-ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::Rng;

use switchboard_providers::catalog;

use crate::config::{ModelConfig, TargetConfig};
use crate::upstream::{Backend, Upstream};
use crate::usage::Price;

/// Output tokens reserved for a model the catalog does not know, when a request sets no limit.
const DEFAULT_MAX_OUTPUT: u32 = 4096;

/// Where one model is served.
pub struct Target {
    pub upstream: Arc<Upstream>,
    /// The provider's own name for the model.
    pub model: String,
    pub weight: u32,
    /// From `pricing:`, else the catalog; `None` when neither knows the model.
    pub price: Option<Price>,
    /// Output tokens reserved when a request sets no `max_tokens`.
    pub max_output: u32,
}

impl Target {
    fn new(
        upstream: Arc<Upstream>,
        model: &str,
        weight: u32,
        config: Option<&TargetConfig>,
    ) -> Self {
        let known = catalog::lookup(model);
        let price = match (config.and_then(|c| c.pricing), &upstream.backend) {
            (Some(p), _) => Some(Price::per_million(p.input, p.output)),
            // The built-in mock costs nothing.
            (None, Backend::Mock(_)) => Some(Price::default()),
            (None, Backend::Http(_)) => {
                known.map(|k| Price::per_million(k.input_usd_per_mtok, k.output_usd_per_mtok))
            }
        };
        let max_output = config
            .and_then(|c| c.max_output_tokens)
            .map(|n| n.get())
            .or(known.map(|k| k.max_output_tokens).filter(|&n| n > 0))
            .unwrap_or(DEFAULT_MAX_OUTPUT);
        Target {
            upstream,
            model: model.to_owned(),
            weight,
            price,
            max_output,
        }
    }

    /// `provider/model`: what usage is charged to.
    pub fn name(&self) -> String {
        format!("{}/{}", self.upstream.name, self.model)
    }
}

/// A public model name and its targets.
pub struct Route {
    pub name: String,
    /// The name metrics use: the configured name, or `provider/*` for the shorthand, whose model
    /// part is client input and must not mint new series.
    pub label: String,
    pub targets: Vec<Target>,
    total_weight: u64,
}

impl Route {
    fn new(name: String, label: String, targets: Vec<Target>) -> Self {
        let total_weight = targets.iter().map(|t| u64::from(t.weight)).sum();
        Route {
            name,
            label,
            targets,
            total_weight,
        }
    }

    /// One target, chosen at random in proportion to the weights.
    pub fn pick(&self) -> Option<&Target> {
        if self.targets.len() <= 1 {
            return self.targets.first();
        }
        let mut ticket = rand::rng().random_range(0..self.total_weight.max(1));
        self.targets.iter().find(|t| {
            let weight = u64::from(t.weight);
            if ticket < weight {
                true
            } else {
                ticket -= weight;
                false
            }
        })
    }
}

/// Every model the gateway serves.
pub struct Routes {
    models: HashMap<String, Arc<Route>>,
    /// Configured names in config order, for `/v1/models`.
    order: Vec<String>,
    upstreams: BTreeMap<String, Arc<Upstream>>,
}

impl Routes {
    /// Builds the table; validation has already checked that every provider exists.
    pub fn new(configs: &[ModelConfig], upstreams: BTreeMap<String, Arc<Upstream>>) -> Self {
        let mut models = HashMap::with_capacity(configs.len());
        let mut order = Vec::with_capacity(configs.len());
        for config in configs {
            let targets = config
                .targets
                .iter()
                .filter_map(|t| {
                    let upstream = upstreams.get(&t.provider)?.clone();
                    Some(Target::new(upstream, &t.model, t.weight, Some(t)))
                })
                .collect();
            order.push(config.name.clone());
            models.insert(
                config.name.clone(),
                Arc::new(Route::new(
                    config.name.clone(),
                    config.name.clone(),
                    targets,
                )),
            );
        }
        Routes {
            models,
            order,
            upstreams,
        }
    }

    /// The route for a public name: a configured model, else `provider/model`.
    pub fn resolve(&self, name: &str) -> Option<Arc<Route>> {
        if let Some(route) = self.models.get(name) {
            return Some(route.clone());
        }
        let (provider, model) = name.split_once('/')?;
        let upstream = self.upstreams.get(provider)?;
        if model.is_empty() {
            return None;
        }
        let target = Target::new(upstream.clone(), model, 1, None);
        let label = format!("{provider}/*");
        Some(Arc::new(Route::new(name.to_owned(), label, vec![target])))
    }

    /// Configured model names, in config order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn routes(yaml: &str) -> Routes {
        let config = Config::parse(yaml, &|_| None).unwrap();
        let upstreams = crate::upstream::build_all(&config.providers).unwrap();
        Routes::new(&config.models, upstreams)
    }

    #[test]
    fn resolves_configured_and_shorthand_names() {
        let routes = routes(
            "providers: { demo: { kind: mock } }\nmodels:\n  - { name: fast, targets: [ { provider: demo, model: m1 } ] }\n",
        );
        assert_eq!(routes.resolve("fast").unwrap().targets[0].model, "m1");
        let shorthand = routes.resolve("demo/some-model").unwrap();
        assert_eq!(shorthand.targets[0].model, "some-model");
        assert_eq!(shorthand.label, "demo/*");
        assert_eq!(routes.resolve("fast").unwrap().label, "fast");
        assert!(routes.resolve("nope").is_none());
        assert!(routes.resolve("nope/m").is_none());
        assert!(routes.resolve("demo/").is_none());
    }

    #[test]
    fn weights_are_honoured() {
        let routes = routes(
            "providers: { a: { kind: mock }, b: { kind: mock } }\nmodels:\n  - { name: m, targets: [ { provider: a, model: x, weight: 3 }, { provider: b, model: y, weight: 1 } ] }\n",
        );
        let route = routes.resolve("m").unwrap();
        let picks_of_a = (0..4000)
            .filter(|_| route.pick().unwrap().upstream.name == "a")
            .count();
        // Expect 3000; the binomial standard deviation is about 27, so ±200 never flakes.
        assert!((2800..=3200).contains(&picks_of_a), "{picks_of_a}");
    }
}
