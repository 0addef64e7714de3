module kohaku/testsupport

go 1.26.8
