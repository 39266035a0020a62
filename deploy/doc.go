// Package deploy holds no Go code: it is how Amber is run, and the tests
// that keep those files honest.
//
//	helm/amber/             Helm chart: mode gateway (StatefulSet + Services)
//	                        or sidecar (example Deployment)
//	Dockerfile              static, non-root image (distroless)
//	docker-compose.yml      Kafka + MinIO + Amber + a producer, for trying it
//	systemd/amber.service   hardened unit for a host
//	grafana/                dashboard over Amber's Prometheus metrics
//
// The tests render the chart in both modes with the Helm that
// scripts/test-deps.sh installs into .tools/bin (skipped when it is missing,
// failed under CI), check the manifests, and check that every flag the
// chart, the compose file and the unit pass is one `amber proxy` accepts and
// every metric the dashboard and alerts query is one Amber exports.
// docs/OPERATIONS.md explains sizing, durability, alerts and runbooks.
package deploy
