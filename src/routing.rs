//! Model names to targets: the `models:` table, the `provider/model` shorthand, and the choice of
//! one target by weight.
//!
//! Resolution is a hash lookup on the hot path; the shorthand builds its one-target route on
//! demand because its model names are open-ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::Rng;

use crate::config::ModelConfig;
use crate::upstream::Upstream;

/// Where one model is served.
pub struct Target {
    pub upstream: Arc<Upstream>,
    /// The provider's own name for the model.
    pub model: String,
    pub weight: u32,
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
                    Some(Target {
                        upstream: upstreams.get(&t.provider)?.clone(),
                        model: t.model.clone(),
                        weight: t.weight,
                    })
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
        let target = Target {
            upstream: upstream.clone(),
            model: model.to_owned(),
            weight: 1,
        };
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
