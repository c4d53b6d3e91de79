from mocli.cli.main import main

main()
