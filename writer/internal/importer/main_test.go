package importer_test

import (
	"os"
	"testing"

	"kohaku/writer/internal/writertest"
)

func TestMain(m *testing.M) { os.Exit(writertest.Run(m)) }
