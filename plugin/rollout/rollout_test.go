package rollout

import (
	"strings"
	"testing"

	"github.com/cni-migrate/kubectl-cni-migrate/plugin/errs"
	"github.com/cni-migrate/kubectl-cni-migrate/plugin/migrate"
)

func TestOrderAndBatches(t *testing.T) {
	nodes := []Node{
		{Name: "cp-2", ControlPlane: true},
		{Name: "w-3"},
		{Name: "w-1", Phase: migrate.PhaseDone},
		{Name: "cp-1", ControlPlane: true, Phase: migrate.PhaseCordoned},
		{Name: "w-5", Phase: migrate.PhaseDrained},
		{Name: "w-2"},
		{Name: "w-4"},
	}
	todo, done := Order(nodes)
	if got := strings.Join(Names(todo), " "); got != "w-5 w-2 w-3 w-4 cp-1 cp-2" {
		t.Fatalf("order %s", got)
	}
	if strings.Join(done, " ") != "w-1" {
		t.Fatalf("done %v", done)
	}
	tests := []struct {
		size int
		want string
	}{
		{1, "[w-5] [w-2] [w-3] [w-4] [cp-1] [cp-2]"},
		{2, "[w-5 w-2] [w-3 w-4] [cp-1] [cp-2]"},
		{3, "[w-5 w-2 w-3] [w-4] [cp-1] [cp-2]"},
		{10, "[w-5 w-2 w-3 w-4] [cp-1] [cp-2]"},
		{0, "[w-5] [w-2] [w-3] [w-4] [cp-1] [cp-2]"},
	}
	for _, tt := range tests {
		if got := Describe(Batches(todo, tt.size)); got != tt.want {
			t.Errorf("size %d: %s, want %s", tt.size, got, tt.want)
		}
	}
}

func TestBatchSize(t *testing.T) {
	tests := []struct {
		batch int
		maxU  string
		total int
		want  int
		code  int
	}{
		{0, "", 10, 1, 0},
		{3, "", 10, 3, 0},
		{0, "2", 10, 2, 0},
		{0, "25%", 10, 2, 0},
		{0, "5%", 10, 1, 0},
		{0, "100%", 6, 6, 0},
		{-1, "", 10, 0, errs.Usage},
		{2, "2", 10, 0, errs.Usage},
		{0, "0", 10, 0, errs.Usage},
		{0, "150%", 10, 0, errs.Usage},
		{0, "x%", 10, 0, errs.Usage},
		{0, "many", 10, 0, errs.Usage},
	}
	for _, tt := range tests {
		got, err := BatchSize(tt.batch, tt.maxU, tt.total)
		if errs.Code(err) != tt.code || (err == nil && got != tt.want) {
			t.Errorf("BatchSize(%d, %q, %d) = %d, %v", tt.batch, tt.maxU, tt.total, got, err)
		}
	}
}
