package vm

import "fmt"

// HoursPerMonth is the billing month the estimates use.
const HoursPerMonth = 730

// Hourly on-demand prices in USD (AWS us-east-1 Linux, GCP us-central1),
// as published in 2025. The estimate is a guide for choosing a size, not a
// bill: regions differ, and spot prices move.
var hourly = map[string]float64{
	// AWS
	"t3.medium": 0.0416, "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
	"t3a.medium": 0.0376, "t3a.large": 0.0752, "t3a.xlarge": 0.1504,
	"t4g.medium": 0.0336, "t4g.large": 0.0672, "t4g.xlarge": 0.1344,
	"m6i.large": 0.096, "m6i.xlarge": 0.192, "m7i.large": 0.1008, "m7i.xlarge": 0.2016,
	// GCP
	"e2-medium": 0.0335, "e2-standard-2": 0.0670, "e2-standard-4": 0.1340, "e2-standard-8": 0.2681,
	"n2-standard-2": 0.0971, "n2-standard-4": 0.1942,
}

// Other monthly prices in USD.
const (
	SpotFactor        = 0.35  // typical spot/Spot VM price as a share of on-demand
	AWSGp3PerGiB      = 0.08  // EBS gp3, per GiB-month
	GCPBalancedPerGiB = 0.10  // pd-balanced, per GiB-month
	PublicIPv4PerHour = 0.005 // an in-use public IPv4 address, both clouds
)

// MonthlyCost estimates the VM's monthly cost: compute, its disks (diskGiB:
// root and data together) and its public IPv4 address. ok is false for machine types not in the table.
func MonthlyCost(cloud, machineType string, spot bool, diskGiB int) (usd float64, ok bool) {
	h, ok := hourly[machineType]
	if !ok {
		return 0, false
	}
	if spot {
		h *= SpotFactor
	}
	disk := AWSGp3PerGiB
	if cloud == "gcp" {
		disk = GCPBalancedPerGiB
	}
	total := h*HoursPerMonth + disk*float64(diskGiB) + PublicIPv4PerHour*HoursPerMonth
	return float64(int(total*100+0.5)) / 100, true
}

// CostNote explains an estimate in one line.
func CostNote(cloud, machineType string, spot bool, diskGiB int) string {
	pricing := "on-demand"
	if spot {
		pricing = fmt.Sprintf("spot at ~%.0f%% of on-demand", SpotFactor*100)
	}
	return fmt.Sprintf("%s %s (%s) for %d h + %d GiB of disk (root and data) + public IPv4; estimate from the price table in infra/vm/cost.go", cloud, machineType, pricing, HoursPerMonth, diskGiB)
}
