// Package budget declares the AWS cost budget from the seed's plan: a
// monthly limit with e-mail alerts at 25, 50 and 75 % of actual spend and at
// 100 % of forecast spend, so a forgotten VM is noticed before the bill is.
//
// Each stack's budget counts only that stack's resources: a cost filter on
// the user-defined cost-allocation tag "stack" (every resource the program
// declares carries it, infra/tags). Two stacks in one account then no
// longer both watch the whole account's bill. AWS counts a tag in Cost
// Explorer and Budgets only after it is activated as a cost-allocation tag
// (Billing console, Cost allocation tags, or `aws ce
// update-cost-allocation-tags-status`); until then, and for spend before the
// activation, the filtered budget sees nothing. The README says so.
package budget

import (
	"fmt"
	"math"
	"strconv"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/budgets"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/tags"
)

// Alert is one notification threshold.
type Alert struct {
	Percent float64
	Kind    string // ACTUAL or FORECASTED
}

// Alerts are the thresholds, in percent of the monthly limit.
var Alerts = []Alert{{25, "ACTUAL"}, {50, "ACTUAL"}, {75, "ACTUAL"}, {100, "FORECASTED"}}

// StackTagKey is the cost-allocation tag the budget filters on.
const StackTagKey = "stack"

// TagFilter is the Budgets cost filter value for tag key=value:
// "user:<key>$<value>" (user-defined tags carry the "user:" prefix; the
// pulumi-aws v6.83.4 budgets/budget.go example "Create a cost filter using
// resource tags" filters TagKeyValue on "user:business-unit$human_resources").
func TagFilter(key, value string) string { return "user:" + key + "$" + value }

// Args configure the budget.
type Args struct {
	Owner      tags.Owner
	MonthlyUSD float64
	Emails     []string
	// EstimateUSD is the stack's estimated monthly cost (0: unknown). An
	// estimate that an alert would fire on every month is warned about.
	EstimateUSD float64
}

// CheckEstimate reports an error when an ordinary month at estimateUSD
// would reach the highest ACTUAL alert (75 %) of a monthlyUSD budget: the
// alerts would then fire every month and mean nothing.
func CheckEstimate(estimateUSD, monthlyUSD float64) error {
	var highest float64
	for _, a := range Alerts {
		if a.Kind == "ACTUAL" && a.Percent > highest {
			highest = a.Percent
		}
	}
	if estimateUSD > monthlyUSD*highest/100 {
		return fmt.Errorf("the estimated %.2f USD a month is above %.0f %% of budgetMonthlyUsd %.2f: that alert would fire every month; raise budgetMonthlyUsd to at least %.0f or pick a smaller VM", estimateUSD, highest, monthlyUSD, math.Ceil(estimateUSD*100/highest))
	}
	return nil
}

// New declares the budget. Without e-mails the budget still tracks spend
// in the console, but AWS cannot notify anyone: a warning says so.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*budgets.Budget, error) {
	if err := CheckEstimate(args.EstimateUSD, args.MonthlyUSD); err != nil {
		_ = ctx.Log.Warn("budget: "+err.Error(), nil)
	}
	var notes budgets.BudgetNotificationArray
	if len(args.Emails) == 0 {
		_ = ctx.Log.Warn("budget: budgetEmails is empty, so the 25/50/75 % alerts go to nobody; set it with pulumi config set --path 'budgetEmails[0]' you@example.com", nil)
	} else {
		for _, a := range Alerts {
			notes = append(notes, budgets.BudgetNotificationArgs{
				ComparisonOperator:       pulumi.String("GREATER_THAN"),
				Threshold:                pulumi.Float64(a.Percent),
				ThresholdType:            pulumi.String("PERCENTAGE"),
				NotificationType:         pulumi.String(a.Kind),
				SubscriberEmailAddresses: pulumi.ToStringArray(args.Emails),
			})
		}
	}
	return budgets.NewBudget(ctx, name, &budgets.BudgetArgs{
		Name:        pulumi.String(args.Owner.Prefix("monthly")),
		BudgetType:  pulumi.String("COST"),
		LimitAmount: pulumi.String(strconv.FormatFloat(args.MonthlyUSD, 'f', 2, 64)),
		LimitUnit:   pulumi.String("USD"),
		TimeUnit:    pulumi.String("MONTHLY"),
		CostFilters: budgets.BudgetCostFilterArray{budgets.BudgetCostFilterArgs{
			Name:   pulumi.String("TagKeyValue"),
			Values: pulumi.StringArray{pulumi.String(TagFilter(StackTagKey, args.Owner.Stack))},
		}},
		Notifications: notes,
		Tags:          args.Owner.AWS("budget"),
	}, opts...)
}
