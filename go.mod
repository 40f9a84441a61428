module microk8s-platform

go 1.26

require microk8s-platform/service v0.0.0

// The comments service is its own module in service/; the platform reads its
// metric names so dashboards are checked against what it really exports.
replace microk8s-platform/service => ./service
