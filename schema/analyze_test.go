package schema

import "testing"

func TestAnalysisFilesAreRunInNameOrder(t *testing.T) {
	scripts, err := analysisScripts()
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 || scripts[0].name != "10_issues.sql" {
		t.Fatalf("analysis files %v: want 10_issues.sql first", scripts)
	}
	for i := 1; i < len(scripts); i++ {
		if scripts[i-1].name >= scripts[i].name {
			t.Errorf("%s runs before %s", scripts[i-1].name, scripts[i].name)
		}
	}
	for _, s := range scripts {
		if len(s.statements) == 0 {
			t.Errorf("%s has no statement", s.name)
		}
	}
}
