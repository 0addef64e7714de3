package collector

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TLSConfig returns the server TLS configuration for a certificate and key file. With a
// non-empty clientCA (a PEM file, or a directory whose every regular, non-hidden file is
// PEM) client certificates are required and verified against it, so that a client without
// one, or with one from another CA, is refused in the handshake.
func TLSConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if clientCA != "" {
		pool, err := loadClientCAs(clientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadClientCAs reads CA certificates from a PEM file or from every regular, non-hidden
// file of a directory. A file without any certificate is an error: it is more likely a
// mistake than something to ignore.
func loadClientCAs(path string) (*x509.CertPool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	files := []string{path}
	if fi.IsDir() {
		files, err = pemFiles(path)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("client CA: directory %s holds no files", path)
		}
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA: %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}

// pemFiles lists the regular files of dir, following symbolic links (as Kubernetes mounts
// secrets) and skipping hidden names (its "..data" bookkeeping).
func pemFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // dangling link
		}
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		if fi.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	return files, nil
}
