package login_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Every refusal's blame comes from its reason's declaration; nothing else may decide it.
var _ = Describe("no second list of reasons", func() {
	// goFiles parses every non-vendor Go file under src (tests too unless skipTests).
	walk := func(skipTests bool, visit func(path string, f *ast.File)) {
		root := filepath.Join("..", "..")
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "vendor" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || (skipTests && strings.HasSuffix(path, "_test.go")) {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			visit(path, f)
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
	}

	It("builds a Reason only in login's table (so none lacks a blame)", func() {
		var outside []string
		walk(false, func(path string, f *ast.File) {
			ast.Inspect(f, func(n ast.Node) bool {
				cl, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				name := ""
				switch t := cl.Type.(type) {
				case *ast.Ident:
					if f.Name.Name == "login" {
						name = t.Name
					}
				case *ast.SelectorExpr:
					if x, ok := t.X.(*ast.Ident); ok && x.Name == "login" {
						name = t.Sel.Name
					}
				}
				if name == "Reason" && !strings.HasSuffix(path, filepath.Join("login", "reasons.go")) {
					outside = append(outside, path)
				}
				return true
			})
		})
		Expect(outside).To(BeEmpty())
	})

	It("leaves penalties to the blame: the server names no reason", func() {
		var named []string
		walk(true, func(path string, f *ast.File) {
			if !strings.Contains(path, filepath.Join("internal", "server")) {
				return
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "login" && strings.HasPrefix(sel.Sel.Name, "Reason") {
						named = append(named, path+": login."+sel.Sel.Name)
					}
				}
				return true
			})
		})
		Expect(named).To(BeEmpty())
	})
})
