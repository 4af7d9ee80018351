//go:build tools

// Package tools pins module dependencies that the project is about to use but
// that no package imports yet, so that `go mod tidy` keeps them in go.mod and
// every contributor builds against the same versions.
package tools

import (
	_ "github.com/IBM/go-sdk-core/v5/core"
	_ "github.com/IBM/ibm-cos-sdk-go/aws"
	_ "github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam"
	_ "github.com/IBM/ibm-cos-sdk-go/service/s3/s3manager"
	_ "github.com/IBM/keyprotect-go-client"
	_ "github.com/IBM/platform-services-go-sdk/atrackerv2"
	_ "github.com/IBM/platform-services-go-sdk/iamidentityv1"
	_ "github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"
	_ "github.com/johannesboyne/gofakes3"
	_ "github.com/johannesboyne/gofakes3/backend/s3mem"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/softlayer/softlayer-go/services"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "golang.org/x/crypto/xts"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sys/cpu"
	_ "golang.org/x/term"
)
