module github.com/cni-migrate/kubectl-cni-migrate/test/krew

go 1.24.0
