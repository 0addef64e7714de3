module kohaku/tools

go 1.26.8
